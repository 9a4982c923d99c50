// Nothing to compile: the header declares a symbol of libclang_rt.fuzzer.
#include "CFuzzDriver.h"
