// OpenSSL 3 libcrypto, the EVP call sequence BYST's AEADKey makes per record
// (Sources/BYSTProto/Crypto/AEAD.swift): re-init with the nonce, AAD, text, final, tag ctrl.
#include <openssl/evp.h>
#include "common.h"

static EVP_CIPHER_CTX *sealer, *opener;
static unsigned char nonce[12], header[4], text[PAYLOAD], tag[16], tail[16];

static void seal(unsigned long n) {
    int length;
    memcpy(nonce + 4, &n, sizeof n);
    EVP_CipherInit_ex(sealer, NULL, NULL, NULL, nonce, 1);
    EVP_CipherUpdate(sealer, NULL, &length, header, sizeof header);
    EVP_CipherUpdate(sealer, text, &length, text, PAYLOAD);
    EVP_CipherFinal_ex(sealer, tail, &length);
    EVP_CIPHER_CTX_ctrl(sealer, EVP_CTRL_AEAD_GET_TAG, 16, tag);
}

static int open(unsigned long n) {
    int length;
    memcpy(nonce + 4, &n, sizeof n);
    EVP_CipherInit_ex(opener, NULL, NULL, NULL, nonce, 0);
    EVP_CipherUpdate(opener, NULL, &length, header, sizeof header);
    EVP_CipherUpdate(opener, text, &length, text, PAYLOAD);
    EVP_CIPHER_CTX_ctrl(opener, EVP_CTRL_AEAD_SET_TAG, 16, tag);
    return EVP_CipherFinal_ex(opener, tail, &length) == 1;
}

int main(void) {
    unsigned char key[32] = {7};
    sealer = EVP_CIPHER_CTX_new();
    opener = EVP_CIPHER_CTX_new();
    if (!sealer || !opener
        || EVP_CipherInit_ex(sealer, EVP_aes_256_gcm(), NULL, key, NULL, 1) != 1
        || EVP_CipherInit_ex(opener, EVP_aes_256_gcm(), NULL, key, NULL, 0) != 1) {
        fprintf(stderr, "openssl: cannot set up AES-256-GCM\n");
        return 1;
    }
    measure("OpenSSL 3 EVP (BYST's sequence)", seal, open);
    return 0;
}
