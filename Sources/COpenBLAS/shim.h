#ifndef HESSIAN_HARNESS_COPENBLAS_SHIM_H
#define HESSIAN_HARNESS_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
/* openblas_get_config and openblas_get_num_threads are declared in cblas.h of OpenBLAS. */
#endif
