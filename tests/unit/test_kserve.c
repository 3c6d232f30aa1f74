/* test_kserve.c — KServe v2 / Triton protocol: request parsing (JSON and binary tensor data,
 * with request bodies exactly as tritonclient 2.52.0 sends them) and response formatting. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kserve.h"
#include "test.h"

/* ---- bodies as tritonclient.http 2.52.0 sends them (captured from the wire) -------------
 * InferInput("images", [2], "BYTES").set_data_from_numpy(np.array([IMG_A, IMG_B],
 * dtype=np.object_), binary_data=True); the JSON header's length goes into the
 * Inference-Header-Content-Length header, and the binary section follows it. */
static const char IMG_A[] = "\xff\xd8\xff\xe0JPEG-ish\x00\x01";             /* 14 bytes */
static const char IMG_B[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";          /* 16 bytes */
/* infer("clip", [i], outputs=[InferRequestedOutput("pixel_values", binary_data=True)],
 *       request_id="req-7", parameters={"dtype": "float16", "exif": True}) */
static const char TC_BINARY[] =
    "{\"id\":\"req-7\",\"inputs\":[{\"name\":\"images\",\"shape\":[2],\"datatype\":\"BYTES\","
    "\"parameters\":{\"binary_data_size\":38}}],\"outputs\":[{\"name\":\"pixel_values\","
    "\"parameters\":{\"binary_data\":true}}],\"parameters\":{\"dtype\":\"float16\","
    "\"exif\":true}}";
/* infer("clip", [i]) — no outputs: the client adds binary_data_output */
static const char TC_NO_OUTPUTS[] =
    "{\"inputs\":[{\"name\":\"images\",\"shape\":[2],\"datatype\":\"BYTES\",\"parameters\":"
    "{\"binary_data_size\":38}}],\"parameters\":{\"binary_data_output\":true}}";
/* o = InferRequestedOutput("pixel_values"); o.set_shared_memory("out_region", 1204224, 64) */
static const char TC_SHM[] =
    "{\"inputs\":[{\"name\":\"images\",\"shape\":[2],\"datatype\":\"BYTES\",\"parameters\":"
    "{\"binary_data_size\":38}}],\"outputs\":[{\"name\":\"pixel_values\",\"parameters\":"
    "{\"binary_data\":false,\"shared_memory_region\":\"out_region\","
    "\"shared_memory_byte_size\":1204224,\"shared_memory_offset\":64}}]}";
/* set_data_from_numpy(np.array([b"abc", b"hello"], dtype=np.object_), binary_data=False),
 * request_id="j1", InferRequestedOutput("pixel_values", binary_data=False); no
 * Inference-Header-Content-Length header */
static const char TC_JSON[] =
    "{\"id\":\"j1\",\"inputs\":[{\"name\":\"images\",\"shape\":[2],\"datatype\":\"BYTES\","
    "\"data\":[\"abc\",\"hello\"]}],\"outputs\":[{\"name\":\"pixel_values\",\"parameters\":"
    "{\"binary_data\":false}}]}";

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len;
} buf;

static void buf_add(buf *b, const void *data, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_elem(buf *b, const void *data, uint32_t n)
{
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    buf_add(b, le, 4);
    buf_add(b, data, n);
}

/* an exactly sized heap copy, so that ASan catches any read past the end */
static uint8_t *exact(const void *data, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (n) memcpy(c, data, n);
    return c;
}

/* the body: json then the binary section */
static buf body_of(const char *json, const buf *bin)
{
    buf b = {0};
    buf_add(&b, json, strlen(json));
    if (bin) buf_add(&b, bin->p, bin->len);
    return b;
}

static buf two_images(void)
{
    buf bin = {0};
    buf_elem(&bin, IMG_A, sizeof IMG_A - 1);
    buf_elem(&bin, IMG_B, sizeof IMG_B - 1);
    return bin;
}

/* Parses json (+ bin when given, with the header length set to strlen(json)). */
static bool parse(const char *json, const buf *bin, int max, kserve_request *req, cp_error *err)
{
    buf b = body_of(json, bin);
    char hl[32];
    snprintf(hl, sizeof hl, "%zu", strlen(json));
    uint8_t *c = exact(b.p, b.len);
    free(b.p);
    bool ok = kserve_parse_infer(c, b.len, bin ? hl : NULL, max, req, err);
    free(c); /* binary images pointed into it: callers here look only at JSON-form images */
    return ok;
}

static int expect_error(const char *json, const buf *bin, int max, cp_status status,
                        const char *needle)
{
    kserve_request req;
    cp_error err = {0};
    bool ok = parse(json, bin, max, &req, &err);
    int bad = 0;
    if (ok) {
        fprintf(stderr, "  expected an error for %s\n", json);
        bad++;
        kserve_request_free(&req);
    } else {
        if (err.status != status) {
            fprintf(stderr, "  status %d, want %d (%s)\n", err.status, status, err.message);
            bad++;
        }
        if (!strstr(err.message, needle)) {
            fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.message, needle);
            bad++;
        }
        if (req.images || req.owned || req.n_images) bad++;
    }
    return bad;
}
#define CHECK_ERR(json, bin, status, needle) \
    CHECK_EQ_INT(expect_error(json, bin, 16, status, needle), 0)

#define IN_BIN(shape, bds)                                                                  \
    "{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":" shape              \
    ",\"parameters\":{\"binary_data_size\":" bds "}}]}"
#define IN_JSON(shape, data)                                                                \
    "{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":" shape ",\"data\":" \
    data "}]"
#define IN_JSON_OUT(shape, data, outputs) IN_JSON(shape, data) ",\"outputs\":" outputs "}"

static bool image_is(const kserve_image *im, const void *data, size_t len)
{
    return im->len == len && (len == 0 || memcmp(im->data, data, len) == 0);
}

/* ---- requests as tritonclient sends them ------------------------------------------------ */

TEST(tritonclient_binary_request)
{
    CHECK_EQ_INT(strlen(TC_BINARY), 226); /* the captured Inference-Header-Content-Length */
    buf bin = two_images();
    CHECK_EQ_INT(bin.len, 38);
    buf b = body_of(TC_BINARY, &bin);
    CHECK_EQ_INT(b.len, 264); /* the captured Content-Length */
    uint8_t *c = exact(b.p, b.len);
    kserve_request req;
    cp_error err = {0};
    CHECK(kserve_parse_infer(c, b.len, "226", 16, &req, &err));
    CHECK_EQ_INT(req.n_images, 2);
    if (req.n_images == 2) {
        CHECK(image_is(&req.images[0], IMG_A, 14));
        CHECK(image_is(&req.images[1], IMG_B, 16));
        CHECK(req.images[0].data == c + 226 + 4); /* points into the body, no copy */
        CHECK(req.images[1].data == c + 226 + 4 + 14 + 4);
    }
    CHECK(!strcmp(req.id, "req-7"));
    CHECK(req.binary_output);
    CHECK(req.fp16);
    CHECK_EQ_INT(req.exif, 1);
    CHECK(req.shm_region[0] == '\0');
    CHECK(req.owned == NULL);
    kserve_request_free(&req);
    CHECK(req.images == NULL);
    free(c);
    free(b.p);
    free(bin.p);
}

TEST(tritonclient_no_outputs_binary_data_output)
{
    CHECK_EQ_INT(strlen(TC_NO_OUTPUTS), 139);
    buf bin = two_images();
    buf b = body_of(TC_NO_OUTPUTS, &bin);
    uint8_t *c = exact(b.p, b.len);
    kserve_request req;
    cp_error err = {0};
    CHECK(kserve_parse_infer(c, b.len, "139", 16, &req, &err));
    CHECK_EQ_INT(req.n_images, 2);
    CHECK(req.binary_output);
    CHECK(!req.fp16);
    CHECK_EQ_INT(req.exif, -1);
    CHECK(req.id[0] == '\0');
    kserve_request_free(&req);
    free(c);
    free(b.p);
    free(bin.p);
}

TEST(tritonclient_shm_output)
{
    CHECK_EQ_INT(strlen(TC_SHM), 265);
    buf bin = two_images();
    buf b = body_of(TC_SHM, &bin);
    uint8_t *c = exact(b.p, b.len);
    kserve_request req;
    cp_error err = {0};
    CHECK(kserve_parse_infer(c, b.len, "265", 16, &req, &err));
    CHECK_EQ_INT(req.n_images, 2);
    CHECK(!strcmp(req.shm_region, "out_region"));
    CHECK_EQ_INT(req.shm_byte_size, 1204224);
    CHECK_EQ_INT(req.shm_offset, 64);
    CHECK(!req.binary_output);
    kserve_request_free(&req);
    free(c);
    free(b.p);
    free(bin.p);
}

TEST(tritonclient_json_request)
{
    kserve_request req;
    cp_error err = {0};
    uint8_t *c = exact(TC_JSON, strlen(TC_JSON));
    CHECK(kserve_parse_infer(c, strlen(TC_JSON), NULL, 16, &req, &err));
    free(c); /* JSON-form images live in req.owned, not in the body */
    CHECK_EQ_INT(req.n_images, 2);
    if (req.n_images == 2) {
        CHECK(image_is(&req.images[0], "abc", 3));
        CHECK(image_is(&req.images[1], "hello", 5));
    }
    CHECK(req.owned != NULL);
    CHECK(!strcmp(req.id, "j1"));
    CHECK(!req.binary_output);
    kserve_request_free(&req);
}

/* ---- other accepted forms ------------------------------------------------------------- */

TEST(json_data_flat_and_nested)
{
    const char *forms[] = {
        IN_JSON("[3]", "[\"a\",\"bc\",\"def\"]") "}",
        IN_JSON("[3]", "[[\"a\",\"bc\",\"def\"]]") "}",
        IN_JSON("[3]", "[[\"a\"],[\"bc\",\"def\"]]") "}",
        IN_JSON("[3]", "[[[\"a\"]],[],[\"bc\"],\"def\"]") "}",
    };
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        kserve_request req;
        cp_error err = {0};
        CHECK(parse(forms[f], NULL, 16, &req, &err));
        CHECK_EQ_INT(req.n_images, 3);
        if (req.n_images == 3) {
            CHECK(image_is(&req.images[0], "a", 1));
            CHECK(image_is(&req.images[1], "bc", 2));
            CHECK(image_is(&req.images[2], "def", 3));
        }
        CHECK_EQ_INT(req.exif, -1);
        CHECK(!req.binary_output);
        kserve_request_free(&req);
    }
    /* white space around the JSON object is fine */
    kserve_request ws;
    cp_error werr = {0};
    CHECK(parse(" \r\n" IN_JSON("[1]", "[\"a\"]") "}\r\n\t ", NULL, 16, &ws, &werr));
    CHECK_EQ_INT(ws.n_images, 1);
    kserve_request_free(&ws);
    /* escapes decode to their UTF-8 bytes */
    kserve_request req;
    cp_error err = {0};
    CHECK(parse(IN_JSON("[1]", "[\"x\\n\\u00e9\"]") "}", NULL, 16, &req, &err));
    CHECK(req.n_images == 1 && image_is(&req.images[0], "x\n\xc3\xa9", 4));
    kserve_request_free(&req);
}

TEST(binary_many_images_keep_order)
{
    enum { N = 6 };
    size_t lens[N] = {1, 300, 70000, 0, 3, 5};
    buf bin = {0};
    uint8_t *data[N];
    for (int i = 0; i < N; i++) {
        data[i] = malloc(lens[i] + 1);
        for (size_t k = 0; k < lens[i]; k++) data[i][k] = (uint8_t)(i * 37 + k * 11);
        buf_elem(&bin, data[i], (uint32_t)lens[i]);
    }
    char json[256];
    snprintf(json, sizeof json,
             "{\"inputs\":[{\"name\":\"images\",\"shape\":[%d],\"datatype\":\"BYTES\","
             "\"parameters\":{\"binary_data_size\":%zu}}]}",
             N, bin.len);
    buf b = body_of(json, &bin);
    uint8_t *c = exact(b.p, b.len);
    char hl[32];
    snprintf(hl, sizeof hl, " %zu ", strlen(json)); /* surrounding blanks are tolerated */
    kserve_request req;
    cp_error err = {0};
    CHECK(kserve_parse_infer(c, b.len, hl, 16, &req, &err));
    CHECK_EQ_INT(req.n_images, N);
    for (int i = 0; i < N && i < req.n_images; i++) CHECK(image_is(&req.images[i], data[i], lens[i]));
    CHECK(!req.binary_output); /* no outputs, no binary_data_output: JSON data */
    kserve_request_free(&req);
    for (int i = 0; i < N; i++) free(data[i]);
    free(c);
    free(b.p);
    free(bin.p);
}

TEST(output_options)
{
    kserve_request req;
    cp_error err = {0};
    /* an output's binary_data overrides the request-level binary_data_output */
    CHECK(parse(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"binary_data_output\":true},"
                "\"outputs\":[{\"name\":\"pixel_values\",\"parameters\":{\"binary_data\":false}}]}",
                NULL, 16, &req, &err));
    CHECK(!req.binary_output);
    kserve_request_free(&req);
    CHECK(parse(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"binary_data_output\":true},"
                "\"outputs\":[{\"name\":\"pixel_values\"}]}",
                NULL, 16, &req, &err));
    CHECK(req.binary_output);
    kserve_request_free(&req);
    CHECK(parse(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"binary_data_output\":false},"
                "\"outputs\":[]}",
                NULL, 16, &req, &err));
    CHECK(!req.binary_output);
    kserve_request_free(&req);
    /* a region wins over binary_data_output: the data goes to the region */
    CHECK(parse(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"binary_data_output\":true},"
                "\"outputs\":[{\"name\":\"pixel_values\",\"parameters\":{"
                "\"shared_memory_region\":\"r\",\"shared_memory_byte_size\":8}}]}",
                NULL, 16, &req, &err));
    CHECK(!req.binary_output);
    CHECK(!strcmp(req.shm_region, "r"));
    kserve_request_free(&req);
    /* a region without an offset: offset 0 */
    CHECK(parse(IN_JSON_OUT("[1]", "[\"a\"]",
                            "[{\"name\":\"pixel_values\",\"parameters\":{"
                            "\"shared_memory_region\":\"r\",\"shared_memory_byte_size\":602112}}]"),
                NULL, 16, &req, &err));
    CHECK(!strcmp(req.shm_region, "r"));
    CHECK_EQ_INT(req.shm_byte_size, 602112);
    CHECK_EQ_INT(req.shm_offset, 0);
    kserve_request_free(&req);
}

TEST(request_parameters)
{
    static const struct {
        const char *params;
        bool fp16;
        int exif;
    } cases[] = {
        {"{\"dtype\":\"float16\"}", true, -1},
        {"{\"dtype\":\"float32\",\"exif\":false}", false, 0},
        {"{\"exif\":1}", false, 1},
        {"{\"exif\":0,\"priority\":3,\"timeout\":100,\"custom\":\"x\"}", false, 0},
        {"{\"exif\":\"true\"}", false, 1},
        {"{}", false, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char json[512];
        snprintf(json, sizeof json, "%s,\"parameters\":%s}", IN_JSON("[1]", "[\"a\"]"),
                 cases[i].params);
        kserve_request req;
        cp_error err = {0};
        CHECK(parse(json, NULL, 16, &req, &err));
        CHECK_EQ_INT(req.fp16, cases[i].fp16);
        CHECK_EQ_INT(req.exif, cases[i].exif);
        kserve_request_free(&req);
    }
}

TEST(max_images_bound)
{
    kserve_request req;
    cp_error err = {0};
    buf bin = {0};
    for (int i = 0; i < 16; i++) buf_elem(&bin, "x", 1);
    CHECK(parse(IN_BIN("[16]", "80"), &bin, 16, &req, &err));
    CHECK_EQ_INT(req.n_images, 16);
    kserve_request_free(&req);
    buf_elem(&bin, "x", 1);
    CHECK_EQ_INT(expect_error(IN_BIN("[17]", "85"), &bin, 16, CP_ERR_TOO_MANY_IMAGES, "17"), 0);
    CHECK_EQ_INT(expect_error(IN_JSON("[3]", "[\"a\",\"b\",\"c\"]") "}", NULL, 2,
                              CP_ERR_TOO_MANY_IMAGES, "limit of 2"),
                 0);
    free(bin.p);
}

/* ---- errors ------------------------------------------------------------------------------ */

TEST(errors_structure)
{
    CHECK_ERR("{}", NULL, CP_ERR_BAD_REQUEST, "no \"inputs\"");
    CHECK_ERR("{\"inputs\":[]}", NULL, CP_ERR_BAD_REQUEST, "non-empty array");
    CHECK_ERR("{\"inputs\":{}}", NULL, CP_ERR_BAD_REQUEST, "non-empty array");
    CHECK_ERR("[1,2]", NULL, CP_ERR_BAD_REQUEST, "JSON object");
    CHECK_ERR("{\"inputs\":[", NULL, CP_ERR_BAD_REQUEST, "not one valid JSON");
    CHECK_ERR("", NULL, CP_ERR_BAD_REQUEST, "empty request");
    CHECK_ERR(IN_JSON("[1]", "[\"a\"]") "} {}", NULL, CP_ERR_BAD_REQUEST, "not one valid JSON");
    CHECK_ERR("{\"id\":5,\"inputs\":[]}", NULL, CP_ERR_BAD_REQUEST, "\"id\" must be a string");
    char longid[400];
    snprintf(longid, sizeof longid, "{\"id\":\"%0128d\",\"inputs\":[]}", 7); /* 128 bytes */
    CHECK_ERR(longid, NULL, CP_ERR_BAD_REQUEST, "\"id\" is too long");
    snprintf(longid, sizeof longid, "{\"id\":\"%0127d\",%s", 7, &IN_JSON("[1]", "[\"a\"]") "}"[1]);
    kserve_request req;
    cp_error err = {0};
    CHECK(parse(longid, NULL, 16, &req, &err)); /* 127 bytes fit */
    CHECK_EQ_INT(strlen(req.id), 127);
    kserve_request_free(&req);
    CHECK_ERR("{\"id\":\"\xff\xfe\",\"inputs\":[]}", NULL, CP_ERR_BAD_REQUEST, "not valid UTF-8");
    CHECK_ERR("{\"parameters\":[],\"inputs\":[]}", NULL, CP_ERR_BAD_REQUEST,
              "\"parameters\" must be an object");
}

TEST(errors_input)
{
    CHECK_ERR("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
              "\"data\":[\"a\"]}]}",
              NULL, CP_ERR_BAD_REQUEST, "unknown input \"image\"");
    CHECK_ERR("{\"inputs\":[{\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}]}", NULL,
              CP_ERR_BAD_REQUEST, "no \"name\"");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1],"
              "\"data\":[\"a\"]},{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1],"
              "\"data\":[\"a\"]}]}",
              NULL, CP_ERR_BAD_REQUEST, "more than once");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"datatype\":\"UINT8\",\"shape\":[1],"
              "\"data\":[1]}]}",
              NULL, CP_ERR_BAD_REQUEST, "datatype must be \"BYTES\", not \"UINT8\"");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"shape\":[1],\"data\":[\"a\"]}]}", NULL,
              CP_ERR_BAD_REQUEST, "datatype must be \"BYTES\"");
    CHECK_ERR(IN_JSON("[1,1]", "[\"a\"]") "}", NULL, CP_ERR_BAD_REQUEST, "shape must be [N]");
    CHECK_ERR(IN_JSON("[]", "[\"a\"]") "}", NULL, CP_ERR_BAD_REQUEST, "shape must be [N]");
    CHECK_ERR(IN_JSON("[-1]", "[\"a\"]") "}", NULL, CP_ERR_BAD_REQUEST, "shape must be [N]");
    CHECK_ERR(IN_JSON("[1.5]", "[\"a\"]") "}", NULL, CP_ERR_BAD_REQUEST, "shape must be [N]");
    CHECK_ERR(IN_JSON("[\"1\"]", "[\"a\"]") "}", NULL, CP_ERR_BAD_REQUEST, "shape must be [N]");
    CHECK_ERR(IN_JSON("[0]", "[]") "}", NULL, CP_ERR_BAD_REQUEST, "no images");
    CHECK_ERR(IN_JSON("[3]", "[\"a\",\"b\"]") "}", NULL, CP_ERR_BAD_REQUEST,
              "\"data\" has 2 elements but the shape is [3]");
    CHECK_ERR(IN_JSON("[1]", "[[\"a\"],[\"b\"]]") "}", NULL, CP_ERR_BAD_REQUEST,
              "\"data\" has 2 elements but the shape is [1]");
    CHECK_ERR(IN_JSON("[2]", "[\"a\",7]") "}", NULL, CP_ERR_BAD_REQUEST, "must hold strings");
    CHECK_ERR(IN_JSON("[1]", "\"a\"") "}", NULL, CP_ERR_BAD_REQUEST, "array of strings");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1]}]}", NULL,
              CP_ERR_BAD_REQUEST, "no \"data\" and no binary_data_size");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1],"
              "\"data\":[\"a\"],\"parameters\":{\"binary_data_size\":5}}]}",
              NULL, CP_ERR_BAD_REQUEST, "both \"data\" and binary_data_size");
    CHECK_ERR("{\"inputs\":[{\"name\":\"images\",\"datatype\":\"BYTES\",\"shape\":[1],"
              "\"parameters\":{\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":5}}]}",
              NULL, CP_ERR_BAD_REQUEST, "inputs in shared memory are not supported");
}

TEST(errors_binary_sizes)
{
    buf bin = two_images(); /* 38 bytes, 2 elements */
    /* truncated: declared 40, 38 follow */
    CHECK_ERR(IN_BIN("[2]", "40"), &bin, CP_ERR_BAD_REQUEST, "only 38 bytes follow");
    /* extra bytes after the binary data */
    CHECK_ERR(IN_BIN("[2]", "30"), &bin, CP_ERR_BAD_REQUEST, "extra bytes");
    /* element count differs from the shape */
    CHECK_ERR(IN_BIN("[3]", "38"), &bin, CP_ERR_BAD_REQUEST, "ends at element 2 of 3");
    CHECK_ERR(IN_BIN("[1]", "38"), &bin, CP_ERR_BAD_REQUEST, "20 bytes left over");
    CHECK_ERR(IN_BIN("[12]", "38"), &bin, CP_ERR_BAD_REQUEST, "too small for 12");
    /* an element's length runs past the tensor's binary data */
    buf bad = {0};
    buf_elem(&bad, "abc", 3);
    bad.p[0] = 9;
    CHECK_ERR(IN_BIN("[1]", "7"), &bad, CP_ERR_BAD_REQUEST, "declares 9 bytes but only 3 remain");
    bad.p[0] = 0xff, bad.p[3] = 0xff; /* 0xff0000ff */
    CHECK_ERR(IN_BIN("[1]", "7"), &bad, CP_ERR_BAD_REQUEST, "declares 4278190335 bytes");
    /* size not an integer */
    CHECK_ERR(IN_BIN("[2]", "38.5"), &bin, CP_ERR_BAD_REQUEST, "non-negative integer");
    CHECK_ERR(IN_BIN("[2]", "-38"), &bin, CP_ERR_BAD_REQUEST, "non-negative integer");
    CHECK_ERR(IN_BIN("[2]", "\"38\""), &bin, CP_ERR_BAD_REQUEST, "must be a number");
    /* binary data without the header, and bytes after the header without binary inputs */
    CHECK_ERR(IN_BIN("[2]", "38"), NULL, CP_ERR_BAD_REQUEST, "no Inference-Header-Content-Length");
    CHECK_ERR(IN_JSON("[1]", "[\"a\"]") "}", &bin, CP_ERR_BAD_REQUEST,
              "38 bytes follow the JSON header but no input has binary_data_size");
    free(bad.p);
    free(bin.p);
}

static int header_error(const char *hl, const char *needle)
{
    buf bin = two_images();
    buf b = body_of(TC_NO_OUTPUTS, &bin);
    uint8_t *c = exact(b.p, b.len);
    kserve_request req;
    cp_error err = {0};
    int bad = 0;
    if (kserve_parse_infer(c, b.len, hl, 16, &req, &err)) {
        bad++;
        kserve_request_free(&req);
    } else if (err.status != CP_ERR_BAD_REQUEST || !strstr(err.message, needle)) {
        fprintf(stderr, "  header \"%s\": %s\n", hl, err.message);
        bad++;
    }
    free(c);
    free(b.p);
    free(bin.p);
    return bad;
}

TEST(errors_header_length)
{
    CHECK_EQ_INT(header_error("178", "larger than the body (177 bytes)"), 0);
    CHECK_EQ_INT(header_error("99999999999999999999999999", "larger than the body"), 0);
    CHECK_EQ_INT(header_error("13a", "not a decimal number"), 0);
    CHECK_EQ_INT(header_error("", "not a decimal number"), 0);
    CHECK_EQ_INT(header_error("-139", "not a decimal number"), 0);
    CHECK_EQ_INT(header_error("+139", "not a decimal number"), 0);
    CHECK_EQ_INT(header_error("0x8b", "not a decimal number"), 0);
    CHECK_EQ_INT(header_error("0", "empty request"), 0);
    /* too short: the JSON is cut */
    CHECK_EQ_INT(header_error("138", "not one valid JSON object"), 0);
    /* too long: binary bytes end up in the JSON */
    CHECK_EQ_INT(header_error("140", "not one valid JSON object"), 0);
}

TEST(errors_outputs)
{
    /* names other than pixel_values are a VLM model's other arrays: the route checks them */
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]", "[{\"name\":\"o\"},{\"name\":\"o\"}]"), NULL,
              CP_ERR_BAD_REQUEST, "output \"o\" is requested more than once");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]", "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},"
                          "{\"name\":\"d\"},{\"name\":\"e\"}]"),
              NULL, CP_ERR_BAD_REQUEST, "unknown output \"e\"");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]", "[{\"name\":\"o\",\"parameters\":{"
                          "\"shared_memory_region\":\"r\"}}]"),
              NULL, CP_ERR_BAD_REQUEST, "shared memory outputs are not available");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]", "[{\"name\":\"pixel_values\"},{\"name\":\"pixel_values\"}]"),
              NULL, CP_ERR_BAD_REQUEST, "more than once");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]", "{\"name\":\"pixel_values\"}"), NULL,
              CP_ERR_BAD_REQUEST, "\"outputs\" must be an array");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{\"shared_memory_region\":"
                          "\"r\"}}]"),
              NULL, CP_ERR_BAD_REQUEST, "shared_memory_region without shared_memory_byte_size");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{"
                          "\"shared_memory_byte_size\":10}}]"),
              NULL, CP_ERR_BAD_REQUEST, "shared_memory_byte_size without shared_memory_region");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{"
                          "\"shared_memory_offset\":10}}]"),
              NULL, CP_ERR_BAD_REQUEST, "shared_memory_offset without shared_memory_region");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{\"shared_memory_region\":"
                          "\"\",\"shared_memory_byte_size\":10}}]"),
              NULL, CP_ERR_BAD_REQUEST, "shared_memory_region is empty");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{\"shared_memory_region\":"
                          "\"r\",\"shared_memory_byte_size\":-1}}]"),
              NULL, CP_ERR_BAD_REQUEST, "non-negative integer");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{\"binary_data\":1}}]"),
              NULL, CP_ERR_BAD_REQUEST, "binary_data must be true or false");
    CHECK_ERR(IN_JSON_OUT("[1]", "[\"a\"]",
                          "[{\"name\":\"pixel_values\",\"parameters\":{\"classification\":3}}]"),
              NULL, CP_ERR_BAD_REQUEST, "classification");
}

TEST(errors_parameters)
{
    CHECK_ERR(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"dtype\":\"float64\"}}", NULL,
              CP_ERR_BAD_REQUEST, "dtype must be");
    CHECK_ERR(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"exif\":2}}", NULL,
              CP_ERR_BAD_REQUEST, "exif must be");
    CHECK_ERR(IN_JSON("[1]", "[\"a\"]") ",\"parameters\":{\"binary_data_output\":\"yes\"}}",
              NULL, CP_ERR_BAD_REQUEST, "binary_data_output must be");
}

/* ---- responses -------------------------------------------------------------------------- */

static cJSON *parse_response(const char *s, size_t len)
{
    return s && strlen(s) == len ? cJSON_ParseWithLength(s, len) : NULL;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static bool str_is(const cJSON *o, const char *k, const char *v)
{
    const cJSON *s = get(o, k);
    return cJSON_IsString(s) && !strcmp(s->valuestring, v);
}

static bool shape_is(const cJSON *out, int n, int h, int w)
{
    const cJSON *s = get(out, "shape");
    int want[4] = {n, 3, h, w}, i = 0;
    if (cJSON_GetArraySize(s) != 4) return false;
    for (const cJSON *e = s->child; e; e = e->next, i++)
        if (!cJSON_IsNumber(e) || e->valuedouble != want[i]) return false;
    return true;
}

TEST(response_binary)
{
    kserve_response r = {.model = "clip-vit-b32", .id = "req-7", .n = 2, .h = 224, .w = 224,
                         .kind = KSERVE_OUT_BINARY, .byte_size = 2u * 3 * 224 * 224 * 4};
    size_t len = 0;
    char *s = kserve_format_response(&r, &len);
    cJSON *j = parse_response(s, len);
    CHECK(j != NULL);
    CHECK(str_is(j, "id", "req-7"));
    CHECK(str_is(j, "model_name", "clip-vit-b32"));
    CHECK(str_is(j, "model_version", "1"));
    const cJSON *outs = get(j, "outputs");
    CHECK_EQ_INT(cJSON_GetArraySize(outs), 1);
    const cJSON *o = outs ? outs->child : NULL;
    CHECK(str_is(o, "name", "pixel_values"));
    CHECK(str_is(o, "datatype", "FP32"));
    CHECK(shape_is(o, 2, 224, 224));
    CHECK(get(o, "data") == NULL);
    const cJSON *bds = get(get(o, "parameters"), "binary_data_size");
    CHECK(cJSON_IsNumber(bds) && bds->valuedouble == 1204224);
    cJSON_Delete(j);
    free(s);
    /* no id: omitted; FP16 */
    r.id = "";
    r.fp16 = true;
    r.byte_size /= 2;
    s = kserve_format_response(&r, &len);
    j = parse_response(s, len);
    CHECK(j != NULL && get(j, "id") == NULL);
    o = j ? get(j, "outputs")->child : NULL;
    CHECK(str_is(o, "datatype", "FP16"));
    bds = get(get(o, "parameters"), "binary_data_size");
    CHECK(cJSON_IsNumber(bds) && bds->valuedouble == 602112);
    cJSON_Delete(j);
    free(s);
}

TEST(response_shm_and_escaping)
{
    kserve_response r = {.model = "we\"ird\\model\n", .id = "i\"d", .n = 1, .h = 2, .w = 3,
                         .kind = KSERVE_OUT_SHM, .byte_size = 72, .shm_region = "out_region"};
    size_t len = 0;
    char *s = kserve_format_response(&r, &len);
    cJSON *j = parse_response(s, len);
    CHECK(j != NULL);
    CHECK(str_is(j, "model_name", "we\"ird\\model\n"));
    CHECK(str_is(j, "id", "i\"d"));
    const cJSON *o = j ? get(j, "outputs")->child : NULL;
    CHECK(shape_is(o, 1, 2, 3));
    CHECK(get(o, "data") == NULL);
    const cJSON *p = get(o, "parameters");
    CHECK(str_is(p, "shared_memory_region", "out_region"));
    CHECK(cJSON_IsNumber(get(p, "shared_memory_byte_size")) &&
          get(p, "shared_memory_byte_size")->valuedouble == 72);
    CHECK(get(p, "binary_data_size") == NULL);
    cJSON_Delete(j);
    free(s);
}

TEST(response_json_fp32_round_trip)
{
    enum { H = 4, W = 5, N = 2, COUNT = N * 3 * H * W };
    float v[COUNT];
    uint32_t seed = 12345;
    for (int i = 0; i < COUNT; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 4.2f; /* like normalised pixels */
    }
    v[0] = 1.0f / 3.0f, v[1] = -0.0f, v[2] = 1e-45f /* denormal */, v[3] = 3.4028235e38f;
    v[4] = -1.17549435e-38f, v[5] = 0.1f, v[6] = 16777217.0f, v[7] = -1.7922626f;
    kserve_response r = {.model = "m", .n = N, .h = H, .w = W, .kind = KSERVE_OUT_JSON,
                         .values = v, .byte_size = sizeof v};
    size_t len = 0;
    char *s = kserve_format_response(&r, &len);
    cJSON *j = parse_response(s, len);
    CHECK(j != NULL);
    const cJSON *o = j ? get(j, "outputs")->child : NULL;
    CHECK(str_is(o, "datatype", "FP32"));
    CHECK(shape_is(o, N, H, W));
    CHECK(get(o, "parameters") == NULL);
    const cJSON *d = get(o, "data");
    CHECK_EQ_INT(cJSON_GetArraySize(d), COUNT);
    int i = 0, mismatches = 0;
    for (const cJSON *e = d ? d->child : NULL; e && i < COUNT; e = e->next, i++) {
        float back = (float)e->valuedouble;
        if (!cJSON_IsNumber(e) || memcmp(&back, &v[i], 4)) mismatches++; /* bit-exact */
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(s && strstr(s, "\"data\":[0.333333343,-0,1.40129846e-45,"));
    cJSON_Delete(j);
    free(s);
}

TEST(response_json_fp16_values)
{
    /* 1.0, -2.0, 0.5, smallest subnormal, largest, 0.1 (as half), -0 */
    uint16_t h[6] = {0x3C00, 0xC000, 0x3800, 0x0001, 0x7BFF, 0x2E66};
    double want[6] = {1.0, -2.0, 0.5, 5.9604644775390625e-08, 65504.0, 0.0999755859375};
    kserve_response r = {.model = "m", .n = 1, .h = 1, .w = 2, .fp16 = true,
                         .kind = KSERVE_OUT_JSON, .values = h, .byte_size = sizeof h};
    size_t len = 0;
    char *s = kserve_format_response(&r, &len);
    cJSON *j = parse_response(s, len);
    CHECK(j != NULL);
    const cJSON *o = j ? get(j, "outputs")->child : NULL;
    CHECK(str_is(o, "datatype", "FP16"));
    const cJSON *d = get(o, "data");
    CHECK_EQ_INT(cJSON_GetArraySize(d), 6);
    int i = 0;
    for (const cJSON *e = d ? d->child : NULL; e && i < 6; e = e->next, i++)
        CHECK((float)e->valuedouble == (float)want[i]);
    cJSON_Delete(j);
    free(s);
}

TEST(error_and_metadata)
{
    char *e = kserve_format_error("input \"images\": bad\n\ttab \\ done");
    cJSON *j = e ? cJSON_Parse(e) : NULL;
    CHECK(j != NULL);
    CHECK(str_is(j, "error", "input \"images\": bad\n\ttab \\ done"));
    CHECK_EQ_INT(cJSON_GetArraySize(j), 1);
    cJSON_Delete(j);
    free(e);

    char *m = kserve_format_model_metadata("clip-vit-l14-336", 336, 336);
    j = m ? cJSON_Parse(m) : NULL;
    CHECK(j != NULL);
    CHECK(str_is(j, "name", "clip-vit-l14-336"));
    CHECK(str_is(j, "platform", "clipprep"));
    const cJSON *v = get(j, "versions");
    CHECK(cJSON_GetArraySize(v) == 1 && cJSON_IsString(v->child) &&
          !strcmp(v->child->valuestring, "1"));
    const cJSON *in = get(j, "inputs") ? get(j, "inputs")->child : NULL;
    CHECK(str_is(in, "name", "images"));
    CHECK(str_is(in, "datatype", "BYTES"));
    CHECK(cJSON_GetArraySize(get(in, "shape")) == 1 && get(in, "shape")->child->valuedouble == -1);
    const cJSON *out = get(j, "outputs") ? get(j, "outputs")->child : NULL;
    CHECK(str_is(out, "name", "pixel_values"));
    CHECK(str_is(out, "datatype", "FP32"));
    CHECK(shape_is(out, -1, 336, 336));
    cJSON_Delete(j);
    free(m);
}

int main(void)
{
    RUN(tritonclient_binary_request);
    RUN(tritonclient_no_outputs_binary_data_output);
    RUN(tritonclient_shm_output);
    RUN(tritonclient_json_request);
    RUN(json_data_flat_and_nested);
    RUN(binary_many_images_keep_order);
    RUN(output_options);
    RUN(request_parameters);
    RUN(max_images_bound);
    RUN(errors_structure);
    RUN(errors_input);
    RUN(errors_binary_sizes);
    RUN(errors_header_length);
    RUN(errors_outputs);
    RUN(errors_parameters);
    RUN(response_binary);
    RUN(response_shm_and_escaping);
    RUN(response_json_fp32_round_trip);
    RUN(response_json_fp16_values);
    RUN(error_and_metadata);
    return TEST_SUMMARY();
}
