/* json_input.c — parsing of the JSON image list (see json_input.h). Strict: an unknown key or
 * shape is an error naming the item, so that a typo never turns into a wrong image. */
#include "json_input.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "base64.h"

bool json_input_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void json_items_free(json_items *items)
{
    if (!items || !items->items)
        return;
    for (int i = 0; i < items->n; i++) {
        free(items->items[i].data);
        free(items->items[i].url);
    }
    free(items->items);
    items->items = NULL;
    items->n = 0;
}

static bool decode_b64(const char *text, size_t max_bytes, json_item *it, cp_error *err)
{
    size_t len = strlen(text);
    size_t bound = base64_decoded_max(len);
    if (bound > max_bytes)
        return cp_fail(err, CP_ERR_BODY_TOO_LARGE,
                       "base64 payload decodes to up to %zu bytes, limit %zu", bound, max_bytes);
    if (len == 0)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "empty base64 payload");
    it->data = malloc(bound ? bound : 1);
    if (!it->data)
        return cp_fail(err, CP_ERR_OVERLOADED, "out of memory decoding base64");
    size_t bad = 0;
    if (!base64_decode(text, len, it->data, &it->len, &bad)) {
        free(it->data);
        it->data = NULL;
        return cp_fail(err, CP_ERR_BAD_REQUEST, "invalid base64 at character %zu", bad);
    }
    it->kind = JSON_ITEM_BYTES;
    return true;
}

/* "data:[<type>][;param]*;base64,<payload>" */
static bool parse_data_uri(const char *s, size_t max_bytes, json_item *it, cp_error *err)
{
    const char *comma = strchr(s, ',');
    if (!comma)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "data URI without ',' before its payload");
    size_t meta = (size_t)(comma - s);
    if (meta < 12 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "data URI must be base64 (data:image/...;base64,...)");
    return decode_b64(comma + 1, max_bytes, it, err);
}

static bool is_http_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* A string naming an image: a data URI or an http(s) URL. */
static bool parse_address(const char *s, size_t max_bytes, json_item *it, cp_error *err)
{
    if (strncasecmp(s, "data:", 5) == 0)
        return parse_data_uri(s, max_bytes, it, err);
    if (is_http_url(s)) {
        it->url = strdup(s);
        if (!it->url)
            return cp_fail(err, CP_ERR_OVERLOADED, "out of memory");
        it->kind = JSON_ITEM_URL;
        return true;
    }
    if (strstr(s, "://"))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "only http and https URLs (or data URIs) are accepted");
    return cp_fail(err, CP_ERR_BAD_REQUEST, "expected a data URI or an http(s) URL");
}

static bool parse_hash(const char *s, json_item *it, cp_error *err)
{
    size_t n = strlen(s);
    if (n != CONTENT_HASH_HEX)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "hash must be %d hex digits (as answered in X-Content-Hash)",
                       CONTENT_HASH_HEX);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return cp_fail(err, CP_ERR_BAD_REQUEST, "hash must be hex digits");
        it->hash[i] = (char)tolower((unsigned char)s[i]);
    }
    it->hash[n] = '\0';
    it->kind = JSON_ITEM_HASH;
    return true;
}

static const char *only_string(const cJSON *o, const char *key, cp_error *err, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return NULL;
    if (!cJSON_IsString(v) || !v->valuestring) {
        *bad = true;
        cp_fail(err, CP_ERR_BAD_REQUEST, "\"%s\" must be a string", key);
        return NULL;
    }
    return v->valuestring;
}

static bool parse_object(const cJSON *o, size_t max_bytes, json_item *it, cp_error *err)
{
    static const char *const known[] = {"b64", "url", "image_url", "type", "hash"};
    const cJSON *e;
    int forms = 0;
    cJSON_ArrayForEach(e, o)
    {
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            ok |= e->string && !strcmp(e->string, known[k]);
        if (!ok)
            return cp_fail(err, CP_ERR_BAD_REQUEST,
                           "unknown key \"%.40s\" (an item has one of b64, url, image_url, hash)",
                           e->string ? e->string : "");
        forms += strcmp(e->string, "type") != 0;
    }
    if (forms != 1)
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "an item object needs exactly one of b64, url, image_url, hash");
    bool bad = false;
    const char *type = only_string(o, "type", err, &bad);
    if (bad)
        return false;
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(o, "image_url");
    if (type && (!iu || strcmp(type, "image_url")))
        return cp_fail(err, CP_ERR_BAD_REQUEST,
                       "\"type\" must be \"image_url\", with an \"image_url\" object");
    const char *s;
    if ((s = only_string(o, "b64", err, &bad)))
        return decode_b64(s, max_bytes, it, err);
    if (!bad && (s = only_string(o, "hash", err, &bad)))
        return parse_hash(s, it, err);
    if (!bad && (s = only_string(o, "url", err, &bad)))
        return parse_address(s, max_bytes, it, err);
    if (bad)
        return false;
    /* image_url: {"url": "..."} (OpenAI; "detail" and the like are ignored) or a string */
    if (cJSON_IsString(iu))
        return parse_address(iu->valuestring, max_bytes, it, err);
    const cJSON *u = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : NULL;
    if (!cJSON_IsString(u) || !u->valuestring)
        return cp_fail(err, CP_ERR_BAD_REQUEST, "image_url must be {\"url\": \"...\"}");
    return parse_address(u->valuestring, max_bytes, it, err);
}

bool json_input_parse(const uint8_t *body, size_t len, int max_items, size_t max_item_bytes,
                      json_items *out, cp_error *err, int *err_index)
{
    *out = (json_items){0};
    *err_index = -1;
    cJSON *root = cJSON_ParseWithLength((const char *)body, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= (const char *)body && at <= (const char *)body + len
                         ? (size_t)(at - (const char *)body) : 0;
        return cp_fail(err, CP_ERR_BAD_REQUEST, "invalid JSON body (near byte %zu)", off);
    }
    bool ok = false;
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(images)) {
        cp_fail(err, CP_ERR_BAD_REQUEST, "the JSON body must be {\"images\": [...]}");
        goto done;
    }
    for (const cJSON *k = root->child; k; k = k->next)
        if (!k->string || strcmp(k->string, "images")) {
            cp_fail(err, CP_ERR_BAD_REQUEST, "unknown key \"%.40s\" in the JSON body (only "
                    "\"images\"; options are query parameters)", k->string ? k->string : "");
            goto done;
        }
    int n = cJSON_GetArraySize(images);
    if (n == 0) {
        cp_fail(err, CP_ERR_BAD_REQUEST, "\"images\" is empty");
        goto done;
    }
    if (n > max_items) {
        cp_fail(err, CP_ERR_TOO_MANY_IMAGES, "%d images, limit %d (max_images_per_request)", n,
                max_items);
        goto done;
    }
    out->items = calloc((size_t)n, sizeof *out->items);
    if (!out->items) {
        cp_fail(err, CP_ERR_OVERLOADED, "out of memory");
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, images)
    {
        json_item *it = &out->items[out->n++];
        bool item_ok;
        if (cJSON_IsString(e))
            item_ok = parse_address(e->valuestring, max_item_bytes, it, err);
        else if (cJSON_IsObject(e))
            item_ok = parse_object(e, max_item_bytes, it, err);
        else
            item_ok = cp_fail(err, CP_ERR_BAD_REQUEST,
                              "an item is a data URI string or an object (b64, url, image_url, "
                              "hash)");
        if (!item_ok) {
            *err_index = out->n - 1;
            goto done;
        }
    }
    ok = true;
done:
    cJSON_Delete(root);
    if (!ok)
        json_items_free(out);
    return ok;
}
