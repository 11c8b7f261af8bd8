/* See defined-forward.c. */
__attribute__((weak, visibility("hidden"))) const double offsets_Tv_[] = {1, -1, 2, -2};
