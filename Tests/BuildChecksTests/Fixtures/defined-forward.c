/* Two translation units that define the same weak hidden constant with different
   contents, as Swift 6.3 did for FDScheme.offsets' outlined arrays (issue 18). */
__attribute__((weak, visibility("hidden"))) const double offsets_Tv_[] = {1, 0};
