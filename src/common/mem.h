/*
 * Memory helpers for owners that free their tables and may be asked to free them again
 * (internal: not part of libenergy's API).
 */
#ifndef ENERGY_MEM_H
#define ENERGY_MEM_H

#include <stdlib.h>

/* free(p) and set the pointer p to NULL, so that a second free is harmless. */
#define MEM_FREE_NULL(p) (free(p), (p) = NULL)

#endif
