// BoringSSL's one-call EVP_AEAD interface (the copy swift-nio-ssl builds into BYST's
// binary as CNIOBoringSSL): the same record, for comparison.
#include <CNIOBoringSSL_aead.h>
#include "common.h"

static EVP_AEAD_CTX *context;
static unsigned char nonce[12], header[4], text[PAYLOAD], sealed[PAYLOAD + 16];
static size_t sealedLength;

static void seal(unsigned long n) {
    memcpy(nonce + 4, &n, sizeof n);
    EVP_AEAD_CTX_seal(context, sealed, &sealedLength, sizeof sealed, nonce, sizeof nonce, text, PAYLOAD,
                      header, sizeof header);
}

static int open(unsigned long n) {
    size_t length;
    memcpy(nonce + 4, &n, sizeof n);
    return EVP_AEAD_CTX_open(context, text, &length, sizeof text, nonce, sizeof nonce, sealed, sealedLength,
                             header, sizeof header) == 1;
}

int main(void) {
    unsigned char key[32] = {7};
    context = EVP_AEAD_CTX_new(EVP_aead_aes_256_gcm(), key, sizeof key, 16);
    if (!context) {
        fprintf(stderr, "boringssl: cannot set up AES-256-GCM\n");
        return 1;
    }
    measure("BoringSSL EVP_AEAD", seal, open);
    return 0;
}
