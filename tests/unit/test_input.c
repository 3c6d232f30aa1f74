/* test_input.c — the pieces behind JSON input: base64 (bounds, alphabets, padding, errors),
 * the JSON item parser, the fetch policy (address classes, host allow-list) and the content
 * cache (hits copy the stored bytes, LRU eviction under the budget). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../server/base64.h"
#include "../../server/config.h"
#include "../../server/content_cache.h"
#include "../../server/fetch.h"
#include "../../server/json_input.h"
#include "test.h"

static bool b64(const char *in, const char *want)
{
    uint8_t out[256];
    size_t n = 0, bad = 0;
    if (base64_decoded_max(strlen(in)) > sizeof out)
        return false;
    if (!base64_decode(in, strlen(in), out, &n, &bad))
        return want == NULL;
    return want && n == strlen(want) && memcmp(out, want, n) == 0;
}

TEST(base64_decodes_and_refuses)
{
    CHECK(b64("", ""));
    CHECK(b64("QQ==", "A"));
    CHECK(b64("QQ", "A"));
    CHECK(b64("QUI=", "AB"));
    CHECK(b64("QUJD", "ABC"));
    CHECK(b64("QUJD\nREVG", "ABCDEF"));
    CHECK(b64("-_-_", "\xfb\xff\xbf"));
    CHECK(b64("+/+/", "\xfb\xff\xbf"));
    CHECK(b64("Q", NULL));       /* 6 bits make no byte */
    CHECK(b64("QUJD=", NULL));   /* padding after a full group */
    CHECK(b64("QQ=A", NULL));    /* data after padding */
    CHECK(b64("QQ===", NULL));
    CHECK(b64("QU*D", NULL));
    for (size_t n = 0; n < 40; n++) /* the bound really bounds */
        CHECK(base64_decoded_max(n) >= n * 3 / 4);
    CHECK_EQ_INT(base64_decoded_max(4), 3);
    CHECK_EQ_INT(base64_decoded_max(6), 6);
}

static int parse(const char *text, json_items *out, cp_error *err)
{
    int index = -2;
    bool ok = json_input_parse((const uint8_t *)text, strlen(text), 4, 1000, out, err, &index);
    return ok ? -100 : index;
}

TEST(json_items_parse)
{
    json_items it;
    cp_error err;
    CHECK_EQ_INT(parse("{\"images\":[\"data:image/png;base64,QUJD\",{\"b64\":\"QUI=\"},"
                       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://a.b/c\"}},"
                       "{\"hash\":\"0123456789ABCDEF0123456789abcdef\"}]}", &it, &err), -100);
    CHECK_EQ_INT(it.n, 4);
    CHECK(it.items[0].kind == JSON_ITEM_BYTES && it.items[0].len == 3);
    CHECK(it.items[1].kind == JSON_ITEM_BYTES && it.items[1].len == 2);
    CHECK(it.items[2].kind == JSON_ITEM_URL && !strcmp(it.items[2].url, "https://a.b/c"));
    CHECK(it.items[3].kind == JSON_ITEM_HASH &&
          !strcmp(it.items[3].hash, "0123456789abcdef0123456789abcdef"));
    json_items_free(&it);
    CHECK_EQ_INT(parse("{\"images\":[{\"b64\":\"QUJD\"},{\"b64\":\"%%\"}]}", &it, &err), 1);
    CHECK_EQ_INT(parse("{\"images\":[1,2,3,4,5]}", &it, &err), -1); /* too many */
    CHECK(err.status == CP_ERR_TOO_MANY_IMAGES);
    CHECK_EQ_INT(parse("{\"images\":[\"x\"]", &it, &err), -1);       /* invalid JSON */
    /* over max_item_bytes (1000) by its bound, refused before decoding */
    char big[1500] = "{\"images\":[{\"b64\":\"";
    size_t l = strlen(big);
    memset(big + l, 'A', 1360);
    strcpy(big + l + 1360, "\"}]}");
    CHECK_EQ_INT(parse(big, &it, &err), 0);
    CHECK(err.status == CP_ERR_BODY_TOO_LARGE);
    CHECK(it.items == NULL && it.n == 0);
}

static address_class v4(const char *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, s, &a.sin_addr);
    return fetch_classify_address((struct sockaddr *)&a);
}

static address_class v6(const char *s)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, s, &a.sin6_addr);
    return fetch_classify_address((struct sockaddr *)&a);
}

TEST(address_classes)
{
    CHECK(v4("8.8.8.8") == ADDR_PUBLIC);
    CHECK(v4("93.184.216.34") == ADDR_PUBLIC);
    CHECK(v4("127.0.0.1") == ADDR_PRIVATE);
    CHECK(v4("127.255.0.9") == ADDR_PRIVATE);
    CHECK(v4("10.1.2.3") == ADDR_PRIVATE);
    CHECK(v4("172.16.0.1") == ADDR_PRIVATE);
    CHECK(v4("172.31.255.255") == ADDR_PRIVATE);
    CHECK(v4("172.32.0.1") == ADDR_PUBLIC);
    CHECK(v4("192.168.1.1") == ADDR_PRIVATE);
    CHECK(v4("169.254.1.1") == ADDR_PRIVATE);
    CHECK(v4("100.64.0.1") == ADDR_PRIVATE);
    CHECK(v4("100.128.0.1") == ADDR_PUBLIC);
    CHECK(v4("0.0.0.0") == ADDR_FORBIDDEN);
    CHECK(v4("0.1.2.3") == ADDR_FORBIDDEN);
    CHECK(v4("169.254.169.254") == ADDR_FORBIDDEN);
    CHECK(v4("224.0.0.1") == ADDR_FORBIDDEN);
    CHECK(v4("255.255.255.255") == ADDR_FORBIDDEN);
    CHECK(v6("2606:4700::1111") == ADDR_PUBLIC);
    CHECK(v6("::1") == ADDR_PRIVATE);
    CHECK(v6("::") == ADDR_FORBIDDEN);
    CHECK(v6("::ffff:127.0.0.1") == ADDR_PRIVATE);
    CHECK(v6("::ffff:169.254.169.254") == ADDR_FORBIDDEN);
    CHECK(v6("::ffff:8.8.8.8") == ADDR_PUBLIC);
    CHECK(v6("64:ff9b::a00:1") == ADDR_PRIVATE);   /* NAT64 of 10.0.0.1 */
    CHECK(v6("fd00:ec2::254") == ADDR_FORBIDDEN);
    CHECK(v6("fd12::1") == ADDR_PRIVATE);
    CHECK(v6("fe80::1") == ADDR_PRIVATE);
    CHECK(v6("ff02::1") == ADDR_FORBIDDEN);
}

TEST(host_allow_list)
{
    CHECK(fetch_host_allowed("anything.example", ""));
    CHECK(fetch_host_allowed("img.example.com", "a.org, img.example.com"));
    CHECK(fetch_host_allowed("IMG.Example.com", "img.example.com"));
    CHECK(!fetch_host_allowed("img.example.com.evil", "img.example.com"));
    CHECK(!fetch_host_allowed("ximg.example.com", "img.example.com"));
    CHECK(fetch_host_allowed("a.b.cdn.net", "*.cdn.net"));
    CHECK(!fetch_host_allowed("cdn.net", "*.cdn.net"));
    CHECK(!fetch_host_allowed("evilcdn.net", "*.cdn.net"));
    cp_error err;
    CHECK(fetch_allow_list_valid("a.com,*.b.org 127.0.0.1", &err));
    CHECK(!fetch_allow_list_valid("a.com/path", &err));
    CHECK(!fetch_allow_list_valid("*", &err));
}

TEST(cache_hits_and_eviction)
{
    uint8_t a[1000], b[1000], out[1000];
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    char h1[33], h2[33];
    content_hash_hex(a, sizeof a, h1);
    content_hash_hex(b, sizeof b, h2);
    CHECK(strcmp(h1, h2) != 0 && strlen(h1) == 32);
    cache_key k1 = cache_key_for(h1, "profile=x"), k1b = cache_key_for(h1, "profile=y");
    cache_key k2 = cache_key_for(h2, "profile=x");
    CHECK(memcmp(&k1, &k1b, sizeof k1) != 0);
    content_cache *c = content_cache_create(2500); /* two entries fit, not three */
    CHECK(!content_cache_get(c, &k1, out, sizeof out));
    content_cache_put(c, &k1, a, sizeof a);
    content_cache_put(c, &k2, b, sizeof b);
    CHECK(content_cache_get(c, &k1, out, sizeof out) && !memcmp(out, a, sizeof a));
    CHECK(!content_cache_get(c, &k1, out, 999)); /* a size mismatch is a miss */
    content_cache_put(c, &k1b, b, sizeof b);     /* evicts k2, the least recently used */
    CHECK(!content_cache_get(c, &k2, out, sizeof out));
    CHECK(content_cache_get(c, &k1, out, sizeof out));
    cache_stats st;
    content_cache_stats(c, &st);
    CHECK_EQ_INT(st.evictions, 1);
    CHECK_EQ_INT(st.entries, 2);
    CHECK(st.bytes <= 2500);
    uint8_t huge[3000] = {0};
    content_cache_put(c, &k2, huge, sizeof huge); /* larger than the budget: not stored */
    content_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 2);
    content_cache_destroy(c);
}

TEST(config_keys)
{
    cp_config c;
    cp_error err;
    config_defaults(&c);
    CHECK(!c.fetch_enabled && !c.fetch_allow_private && c.cache_bytes == 0);
    CHECK(config_apply_json_text(&c, "{\"fetch_enabled\": true, \"cache_bytes\": \"1MiB\","
                                     "\"fetch_allow_hosts\": \"*.a.org\"}", NULL, &err));
    CHECK(c.fetch_enabled && c.cache_bytes == 1 << 20 && !strcmp(c.fetch_allow_hosts, "*.a.org"));
    CHECK(!config_apply_json_text(&c, "{\"fetch_enabled\": 1}", NULL, &err));
    CHECK(config_apply_string(&c, "fetch_allow_private", "1", &err) && c.fetch_allow_private);
    CHECK(config_apply_string(&c, "fetch_allow_private", "false", &err) && !c.fetch_allow_private);
    CHECK(!config_apply_string(&c, "fetch_enabled", "yes", &err));
    CHECK(!config_apply_string(&c, "fetch_max_redirects", "21", &err));
}

int main(void)
{
    RUN(config_keys);
    RUN(base64_decodes_and_refuses);
    RUN(json_items_parse);
    RUN(address_classes);
    RUN(host_allow_list);
    RUN(cache_hits_and_eviction);
    return TEST_SUMMARY();
}
