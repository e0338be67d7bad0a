/*
 * A stand-in for Windows' system ICU (icuuc.dll, part of Windows 10 1903 and later), which
 * Wine does not provide. Qt 6 links it for legacy text codecs (QStringConverter beyond
 * UTF-8/16/32 and Latin-1). This one knows no converters: ucnv_open fails with
 * U_FILE_ACCESS_ERROR, as it does on Windows for an unknown codec, and Qt falls back to its
 * built-in codecs. Only the Wine test prefix gets it (scripts/windows_bundle.sh); the app's
 * bundle never carries it.
 */
#include <stddef.h>
#include <stdint.h>

#define EXPORT __declspec(dllexport)
typedef int UErrorCode;
enum { U_FILE_ACCESS_ERROR = 4 };

static void fail(UErrorCode *err) { if (err && *err <= 0) *err = U_FILE_ACCESS_ERROR; }

EXPORT void *ucnv_open(const char *name, UErrorCode *err) { (void)name; fail(err); return NULL; }
EXPORT void ucnv_close(void *cnv) { (void)cnv; }
EXPORT void ucnv_reset(void *cnv) { (void)cnv; }
EXPORT int8_t ucnv_getMaxCharSize(const void *cnv) { (void)cnv; return 1; }
EXPORT const char *ucnv_getName(const void *cnv, UErrorCode *err) { (void)cnv; fail(err); return NULL; }
EXPORT void ucnv_getToUCallBack(const void *cnv, void **action, const void **ctx)
{ (void)cnv; if (action) *action = NULL; if (ctx) *ctx = NULL; }
EXPORT void ucnv_getFromUCallBack(const void *cnv, void **action, const void **ctx)
{ (void)cnv; if (action) *action = NULL; if (ctx) *ctx = NULL; }
EXPORT void ucnv_setToUCallBack(void *cnv, void *action, const void *ctx, void **old_action,
                                const void **old_ctx, UErrorCode *err)
{ (void)cnv; (void)action; (void)ctx; (void)old_action; (void)old_ctx; fail(err); }
EXPORT void ucnv_setFromUCallBack(void *cnv, void *action, const void *ctx, void **old_action,
                                  const void **old_ctx, UErrorCode *err)
{ (void)cnv; (void)action; (void)ctx; (void)old_action; (void)old_ctx; fail(err); }
EXPORT void UCNV_FROM_U_CALLBACK_SUBSTITUTE(const void *c, void *a, const void *b, int32_t l,
                                            int32_t p, int r, UErrorCode *err)
{ (void)c; (void)a; (void)b; (void)l; (void)p; (void)r; fail(err); }
EXPORT void UCNV_TO_U_CALLBACK_SUBSTITUTE(const void *c, void *a, const char *b, int32_t l,
                                          int r, UErrorCode *err)
{ (void)c; (void)a; (void)b; (void)l; (void)r; fail(err); }
EXPORT void ucnv_cbToUWriteUChars(void *args, const uint16_t *src, int32_t len, int32_t off,
                                  UErrorCode *err)
{ (void)args; (void)src; (void)len; (void)off; fail(err); }
EXPORT void ucnv_cbFromUWriteUChars(void *args, const uint16_t **src, const uint16_t *end,
                                    int32_t off, UErrorCode *err)
{ (void)args; (void)src; (void)end; (void)off; fail(err); }
EXPORT void ucnv_toUnicode(void *cnv, uint16_t **t, const uint16_t *te, const char **s,
                           const char *se, int32_t *o, int8_t flush, UErrorCode *err)
{ (void)cnv; (void)t; (void)te; (void)s; (void)se; (void)o; (void)flush; fail(err); }
EXPORT void ucnv_fromUnicode(void *cnv, char **t, const char *te, const uint16_t **s,
                             const uint16_t *se, int32_t *o, int8_t flush, UErrorCode *err)
{ (void)cnv; (void)t; (void)te; (void)s; (void)se; (void)o; (void)flush; fail(err); }
EXPORT int32_t ucnv_toUCountPending(const void *cnv, UErrorCode *err) { (void)cnv; fail(err); return 0; }
EXPORT int32_t ucnv_fromUCountPending(const void *cnv, UErrorCode *err) { (void)cnv; fail(err); return 0; }
EXPORT const char *ucnv_getStandardName(const char *name, const char *standard, UErrorCode *err)
{ (void)name; (void)standard; fail(err); return NULL; }
EXPORT const char *ucnv_getAvailableName(int32_t n) { (void)n; return NULL; }
EXPORT int32_t ucnv_countAvailable(void) { return 0; }
