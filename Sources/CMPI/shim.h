// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_DOUBLE, ...) are C macros that
// expand to addresses of library globals, which Swift cannot import; these inline
// functions return them.
#ifndef HH_CMPI_SHIM_H
#define HH_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm hh_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype hh_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype hh_mpi_float(void) { return MPI_FLOAT; }
static inline int hh_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int hh_mpi_success(void) { return MPI_SUCCESS; }

#endif
