#ifndef SWIFTGRPC_COPENSSL_SHIM_H
#define SWIFTGRPC_COPENSSL_SHIM_H
/* OpenSSL for the TLS transport. OpenSSL spells several calls as macros, which Swift cannot
   import: these thin wrappers make them functions. No logic. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline int swiftgrpc_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
  return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long swiftgrpc_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) {
  return SSL_CTX_set_mode(ctx, mode);
}
static inline int swiftgrpc_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
  return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline int swiftgrpc_ssl_ctx_set_servername_callback(SSL_CTX *ctx,
                                                            int (*cb)(SSL *, int *, void *)) {
  return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int swiftgrpc_ssl_ctx_set_servername_arg(SSL_CTX *ctx, void *arg) {
  return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int swiftgrpc_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline uint64_t swiftgrpc_ssl_op_ignore_unexpected_eof(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline int swiftgrpc_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *cert) {
  return (int)SSL_CTX_add1_chain_cert(ctx, cert);
}
static inline unsigned long swiftgrpc_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
static inline uint64_t swiftgrpc_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t swiftgrpc_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
/* Send the certificate chain as configured: no chain built from the trust store (as gRPC). */
static inline long swiftgrpc_ssl_mode_no_auto_chain(void) { return SSL_MODE_NO_AUTO_CHAIN; }
static inline int swiftgrpc_x509_stack_count(STACK_OF(X509) *s) { return s ? sk_X509_num(s) : 0; }
static inline X509 *swiftgrpc_x509_stack_at(STACK_OF(X509) *s, int i) { return sk_X509_value(s, i); }
static inline long swiftgrpc_ssl_mode_partial_write(void) {
  return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS;
}
/* A GENERAL_NAME of a certificate's subjectAltName: its type, and its text as bytes. */
static inline int swiftgrpc_general_name_type(const GENERAL_NAME *n) { return n->type; }
static inline const ASN1_STRING *swiftgrpc_general_name_string(const GENERAL_NAME *n) {
  switch (n->type) {
  case GEN_DNS: return n->d.dNSName;
  case GEN_URI: return n->d.uniformResourceIdentifier;
  case GEN_EMAIL: return n->d.rfc822Name;
  case GEN_IPADD: return n->d.iPAddress;
  default: return NULL;
  }
}
static inline STACK_OF(GENERAL_NAME) *swiftgrpc_x509_alt_names(X509 *cert) {
  return (STACK_OF(GENERAL_NAME) *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}
static inline int swiftgrpc_general_names_count(STACK_OF(GENERAL_NAME) *names) {
  return sk_GENERAL_NAME_num(names);
}
static inline const GENERAL_NAME *swiftgrpc_general_names_at(STACK_OF(GENERAL_NAME) *names, int i) {
  return sk_GENERAL_NAME_value(names, i);
}
static inline void swiftgrpc_general_names_free(STACK_OF(GENERAL_NAME) *names) {
  GENERAL_NAMES_free(names);
}
static inline int swiftgrpc_gen_dns(void) { return GEN_DNS; }
static inline int swiftgrpc_gen_uri(void) { return GEN_URI; }
static inline int swiftgrpc_gen_email(void) { return GEN_EMAIL; }
static inline int swiftgrpc_gen_ipadd(void) { return GEN_IPADD; }
#endif
