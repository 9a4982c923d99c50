#ifndef BYST_CCRYPTO_SHIM_H
#define BYST_CCRYPTO_SHIM_H
// Only the non-deprecated OpenSSL 3 APIs BYST uses.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#endif
