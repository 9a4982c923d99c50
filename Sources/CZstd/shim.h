#ifndef BYST_CZSTD_SHIM_H
#define BYST_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
