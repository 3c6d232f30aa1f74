/* test_profile.c — preprocessing profiles: the shipped profiles and their documented values,
 * validation errors (unknown keys, sizes, mean/std, resample codes, crop rounding, a
 * variable output size), directory loading (sorted, stem == name, empty dir) and the JSON
 * description served by GET /v1/profiles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "profile.h"
#include "test.h"

static char tmpdir[256];

static const char *repo_path(const char *rel)
{
    static char buf[512];
    static const char *prefixes[] = {"", "../", "../../", "../../../"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", prefixes[i], rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    return rel;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

/* A fresh empty directory under tmpdir. */
static const char *fresh_dir(const char *name)
{
    static char path[4][512];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    mkdir(p, 0700);
    return p;
}

#define OPENAI_MEAN_0 0.48145466
#define OPENAI_STD_2 0.27577711

static const char valid[] =
    "{\"name\": \"t\", \"resize\": {\"shortest_edge\": 224},"
    " \"crop\": {\"height\": 224, \"width\": 224, \"rounding\": \"floor\"},"
    " \"resample\": \"bicubic\", \"mean\": [0.48145466, 0.4578275, 0.40821073],"
    " \"std\": [0.26862954, 0.26130258, 0.27577711]}";

/* valid with one substitution: replaces the first occurrence of `from` by `to` */
static bool parse_variant(const char *from, const char *to, profile *p, cp_error *err)
{
    char text[2048];
    const char *at = strstr(valid, from);
    if (!at) {
        fprintf(stderr, "    test bug: \"%s\" not in the valid profile\n", from);
        abort();
    }
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - valid), valid, to, at + strlen(from));
    err->message[0] = 0;
    bool ok = profile_parse_json(text, p, err);
    if (!ok && err->status != CP_ERR_CONFIG) {
        fprintf(stderr, "    wrong status %d\n", err->status);
        return true; /* makes the caller's CHECK(!...) fail */
    }
    return ok;
}

static bool msg_has(const cp_error *e, const char *s)
{
    return strstr(e->message, s) != NULL;
}

static void check_openai_norm(const profile *p)
{
    CHECK(p->mean[0] == 0.48145466 && p->mean[1] == 0.4578275 && p->mean[2] == 0.40821073);
    CHECK(p->std[0] == 0.26862954 && p->std[1] == 0.26130258 && p->std[2] == 0.27577711);
}

TEST(shipped_profiles_load_with_documented_values)
{
    profile_set set = {0};
    cp_error err;
    bool ok = profiles_load_dir(repo_path("config/profiles"), &set, &err);
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "    %s\n", err.message);
        return;
    }
    /* the five original profiles, among the preset table (docs/profiles.md) */
    CHECK(set.count >= 5);
    static const char *names[] = {"clip-224", "clip-336", "openclip-224", "siglip-224",
                                  "siglip-384"};
    for (int i = 0; i < 5; i++) CHECK(profiles_find(&set, names[i]) != NULL);

    const profile *p = profiles_find(&set, "clip-224");
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->resize, RESIZE_SHORTEST_EDGE);
        CHECK_EQ_INT(p->shortest_edge, 224);
        CHECK_EQ_INT(p->crop, CROP_FLOOR);
        CHECK_EQ_INT(p->crop_width, 224);
        CHECK_EQ_INT(p->crop_height, 224);
        CHECK_EQ_INT(p->filter, FILTER_BICUBIC);
        CHECK(p->rescale_factor == 0.00392156862745098);
        check_openai_norm(p);
        CHECK(!p->exif);
        CHECK_EQ_INT(p->out_width, 224);
        CHECK_EQ_INT(p->out_height, 224);
        CHECK(p->description[0] && p->reference[0]);
    }
    p = profiles_find(&set, "clip-336");
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->resize, RESIZE_SHORTEST_EDGE);
        CHECK_EQ_INT(p->shortest_edge, 336);
        CHECK_EQ_INT(p->crop, CROP_FLOOR);
        CHECK_EQ_INT(p->out_width, 336);
        CHECK_EQ_INT(p->out_height, 336);
        CHECK_EQ_INT(p->filter, FILTER_BICUBIC);
        check_openai_norm(p);
    }
    p = profiles_find(&set, "openclip-224");
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->resize, RESIZE_SHORTEST_EDGE);
        CHECK_EQ_INT(p->shortest_edge, 224);
        CHECK_EQ_INT(p->crop, CROP_HALF_EVEN);
        CHECK_EQ_INT(p->out_width, 224);
        CHECK_EQ_INT(p->filter, FILTER_BICUBIC);
        check_openai_norm(p);
        CHECK(!p->exif);
    }
    static const struct {
        const char *name;
        int size;
    } siglip[] = {{"siglip-224", 224}, {"siglip-384", 384}};
    for (int i = 0; i < 2; i++) {
        p = profiles_find(&set, siglip[i].name);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK_EQ_INT(p->resize, RESIZE_EXACT);
        CHECK_EQ_INT(p->resize_width, siglip[i].size);
        CHECK_EQ_INT(p->resize_height, siglip[i].size);
        CHECK_EQ_INT(p->crop, CROP_NONE);
        CHECK_EQ_INT(p->out_width, siglip[i].size);
        CHECK_EQ_INT(p->out_height, siglip[i].size);
        CHECK_EQ_INT(p->filter, FILTER_BICUBIC);
        for (int c = 0; c < 3; c++) CHECK(p->mean[c] == 0.5 && p->std[c] == 0.5);
    }
    CHECK(profiles_find(&set, "clip") == NULL);
    CHECK(profiles_find(&set, "CLIP-224") == NULL);
    profiles_free(&set);
    CHECK(set.items == NULL && set.count == 0);
}

TEST(valid_profile_and_defaults)
{
    profile p;
    cp_error err;
    CHECK(profile_parse_json(valid, &p, &err));
    CHECK(strcmp(p.name, "t") == 0);
    CHECK(p.description[0] == 0); /* optional */
    CHECK(p.rescale_factor == 0.00392156862745098); /* default 1/255 */
    CHECK(!p.exif);
    CHECK(p.mean[0] == OPENAI_MEAN_0 && p.std[2] == OPENAI_STD_2);
    /* HF integer resample codes */
    CHECK(parse_variant("\"bicubic\"", "3", &p, &err));
    CHECK_EQ_INT(p.filter, FILTER_BICUBIC);
    CHECK(parse_variant("\"bicubic\"", "2", &p, &err));
    CHECK_EQ_INT(p.filter, FILTER_BILINEAR);
    CHECK(parse_variant("\"bicubic\"", "\"bilinear\"", &p, &err));
    CHECK_EQ_INT(p.filter, FILTER_BILINEAR);
    /* exact resize with a crop: output = crop */
    CHECK(parse_variant("{\"shortest_edge\": 224}", "{\"height\": 256, \"width\": 300}", &p,
                        &err));
    CHECK_EQ_INT(p.resize, RESIZE_EXACT);
    CHECK_EQ_INT(p.resize_width, 300);
    CHECK_EQ_INT(p.resize_height, 256);
    CHECK_EQ_INT(p.out_width, 224);
    /* non-square crop */
    CHECK(parse_variant("\"height\": 224, \"width\": 224", "\"height\": 200, \"width\": 300", &p,
                        &err));
    CHECK_EQ_INT(p.out_width, 300);
    CHECK_EQ_INT(p.out_height, 200);
    CHECK(parse_variant("\"floor\"", "\"half_even\"", &p, &err));
    CHECK_EQ_INT(p.crop, CROP_HALF_EVEN);
    CHECK(parse_variant("\"name\": \"t\"", "\"name\": \"t\", \"exif\": true, \"rescale_factor\": 1",
                        &p, &err));
    CHECK(p.exif);
    CHECK(p.rescale_factor == 1.0);
}

TEST(validation_errors_name_the_key)
{
    profile p;
    cp_error err;
    static const struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"\"name\": \"t\"", "\"name\": \"t\", \"colour\": 1", "\"colour\""},
        {"\"shortest_edge\": 224", "\"shortest_edge\": 224, \"max_size\": 1", "resize.max_size"},
        {"\"rounding\": \"floor\"", "\"rounding\": \"floor\", \"pad\": 0", "crop.pad"},
        {"\"shortest_edge\": 224", "\"shortest_edge\": 0", "resize.shortest_edge"},
        {"\"shortest_edge\": 224", "\"shortest_edge\": 4097", "4096"},
        {"\"shortest_edge\": 224", "\"shortest_edge\": 22.5", "resize.shortest_edge"},
        {"\"shortest_edge\": 224", "\"shortest_edge\": \"224\"", "string"},
        {"\"shortest_edge\": 224", "\"shortest_edge\": 224, \"height\": 224", "not both"},
        {"{\"shortest_edge\": 224}", "{\"height\": 224}", "resize.width"},
        {"{\"shortest_edge\": 224}", "{}", "resize"},
        {"{\"shortest_edge\": 224}", "224", "resize"},
        {"\"height\": 224, \"width\": 224", "\"height\": 0, \"width\": 224", "crop.height"},
        {"\"height\": 224, \"width\": 224", "\"height\": 224", "crop.width"},
        {"\"rounding\": \"floor\"", "\"rounding\": \"round\"", "crop.rounding"},
        {", \"rounding\": \"floor\"", "", "crop.rounding"},
        {"\"resample\": \"bicubic\"", "\"resample\": \"lanczos\"", "lanczos"},
        {"\"resample\": \"bicubic\"", "\"resample\": 1", "resample"},
        {"\"resample\": \"bicubic\"", "\"resample\": true", "resample"},
        {"\"resample\": \"bicubic\", ", "", "resample"},
        {"[0.48145466, 0.4578275, 0.40821073]", "[0.48, 0.45]", "mean"},
        {"[0.48145466, 0.4578275, 0.40821073]", "[0.48, 0.45, 0.4, 0.1]", "mean"},
        {"[0.48145466, 0.4578275, 0.40821073]", "[0.48, \"x\", 0.4]", "mean"},
        {"[0.26862954, 0.26130258, 0.27577711]", "[0.26, 0, 0.27]", "std"},
        {"[0.26862954, 0.26130258, 0.27577711]", "[0.26, -0.5, 0.27]", "std"},
        {"[0.26862954, 0.26130258, 0.27577711]", "0.5", "std"},
        {"\"name\": \"t\"", "\"name\": \"\"", "name"},
        {"\"name\": \"t\"", "\"name\": \"a/b\"", "name"},
        {"\"name\": \"t\"", "\"name\": 7", "name"},
        {"\"name\": \"t\", ", "", "name"},
        {"\"name\": \"t\"", "\"name\": \"t\", \"exif\": \"yes\"", "exif"},
        {"\"name\": \"t\"", "\"name\": \"t\", \"rescale_factor\": 0", "rescale_factor"},
        {"\"name\": \"t\"", "\"name\": \"t\", \"description\": 3", "description"},
        {"\"name\": \"t\"", "\"name\": \"t\", \"name\": \"u\"", "duplicate"},
        {"{\"height\": 224, \"width\": 224, \"rounding\": \"floor\"}", "null", "varies"},
        {"{\"height\": 224, \"width\": 224, \"rounding\": \"floor\"}", "\"center\"", "crop"},
        {"\"std\"", "\"std\" \"oops\"", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = parse_variant(cases[i].from, cases[i].to, &p, &err);
        CHECK(!ok);
        if (ok || !msg_has(&err, cases[i].expect)) {
            fprintf(stderr, "    case %zu (%s -> %s): \"%s\" lacks \"%s\"\n", i, cases[i].from,
                    cases[i].to, err.message, cases[i].expect);
            CHECK(0);
        }
    }
    /* a missing crop is an error too: "crop": null must be explicit */
    CHECK(!parse_variant(" \"crop\": {\"height\": 224, \"width\": 224, \"rounding\": \"floor\"},",
                         "", &p, &err));
    CHECK(msg_has(&err, "crop"));
    CHECK(!profile_parse_json("[]", &p, &err));
    CHECK(!profile_parse_json("", &p, &err));
}

TEST(references_and_their_default)
{
    profile p;
    cp_error err;
    /* no default_reference, floor rounding: the daemon-wide default applies later */
    CHECK(parse_variant("\"name\": \"t\"", "\"name\": \"t\"", &p, &err));
    CHECK(!p.default_ref_set);
    CHECK_EQ_INT((int)p.references, (int)REF_ALL_MASK);
    /* half_even rounding without a default_reference: the open_clip transform (as before) */
    CHECK(parse_variant("\"rounding\": \"floor\"", "\"rounding\": \"half_even\"", &p, &err));
    CHECK(p.default_ref_set && p.default_ref == REF_OPEN_CLIP);
    CHECK(parse_variant("\"name\": \"t\"",
                        "\"name\": \"t\", \"default_reference\": \"transformers5\"", &p, &err));
    CHECK(p.default_ref_set && p.default_ref == REF_TRANSFORMERS5);
    CHECK(parse_variant("\"name\": \"t\"",
                        "\"name\": \"t\", \"references\": [\"open_clip\", \"transformers5-pil\"]",
                        &p, &err));
    CHECK_EQ_INT((int)p.references, (1 << REF_OPEN_CLIP) | (1 << REF_TRANSFORMERS5_PIL));
    /* errors name the key */
    CHECK(!parse_variant("\"name\": \"t\"", "\"name\": \"t\", \"default_reference\": \"hf\"",
                         &p, &err));
    CHECK(strstr(err.message, "default_reference") != NULL);
    CHECK(!parse_variant("\"name\": \"t\"", "\"name\": \"t\", \"references\": []", &p, &err));
    CHECK(strstr(err.message, "references") != NULL);
    CHECK(!parse_variant("\"name\": \"t\"",
                         "\"name\": \"t\", \"references\": [\"open_clip\"], "
                         "\"default_reference\": \"transformers4\"",
                         &p, &err));
    CHECK(strstr(err.message, "not in") != NULL);
    /* the daemon default fills in, and a profile that cannot take it is an error */
    profile two[2];
    CHECK(parse_variant("\"name\": \"t\"", "\"name\": \"t\"", &two[0], &err));
    CHECK(parse_variant("\"name\": \"t\"",
                        "\"name\": \"t\", \"references\": [\"transformers4\"]", &two[1], &err));
    profile_set set = {two, 2};
    CHECK(profiles_apply_default_reference(&set, REF_TRANSFORMERS4, &err));
    CHECK(two[0].default_ref == REF_TRANSFORMERS4 && two[1].default_ref == REF_TRANSFORMERS4);
    CHECK(!profiles_apply_default_reference(&set, REF_TRANSFORMERS5, &err));
    CHECK(strstr(err.message, "default_reference") != NULL);
}

TEST(load_dir_sorted_and_checked)
{
    char text[2048];
    profile_set set = {0};
    cp_error err;

    const char *d = fresh_dir("sorted");
    static const char *stems[] = {"zeta", "alpha", "mid.v2"};
    for (int i = 0; i < 3; i++) {
        char file[64];
        snprintf(text, sizeof text, "{\"name\": \"%s\"%s", stems[i], strchr(valid, ','));
        snprintf(file, sizeof file, "%s.json", stems[i]);
        write_file(d, file, text);
    }
    write_file(d, "README.md", "not a profile");
    write_file(d, ".hidden.json", "not json");
    CHECK(profiles_load_dir(d, &set, &err));
    CHECK_EQ_INT(set.count, 3);
    if (set.count == 3) {
        CHECK(strcmp(set.items[0].name, "alpha") == 0);
        CHECK(strcmp(set.items[1].name, "mid.v2") == 0);
        CHECK(strcmp(set.items[2].name, "zeta") == 0);
    }
    profiles_free(&set);

    /* name must equal the file stem */
    const char *m = fresh_dir("mismatch");
    write_file(m, "other.json", valid); /* name "t" */
    CHECK(!profiles_load_dir(m, &set, &err));
    CHECK(msg_has(&err, "other.json") && msg_has(&err, "\"t\"") && msg_has(&err, "name"));
    CHECK(set.items == NULL && set.count == 0);

    /* an invalid file is named with its key */
    const char *b = fresh_dir("bad");
    write_file(b, "a.json", "{\"name\": \"a\", \"resize\": {\"shortest_edge\": 224}, \"crop\": null,"
                            " \"resample\": 3, \"mean\": [0,0,0], \"std\": [1,1,1], \"extra\": 1}");
    CHECK(!profiles_load_dir(b, &set, &err));
    CHECK(msg_has(&err, "a.json") && msg_has(&err, "\"extra\""));
    write_file(b, "a.json", "{\"name\": \"a\",");
    CHECK(!profiles_load_dir(b, &set, &err));
    CHECK(msg_has(&err, "a.json") && msg_has(&err, "JSON"));

    /* empty and missing directories */
    const char *e = fresh_dir("empty");
    write_file(e, "notes.txt", "x");
    CHECK(!profiles_load_dir(e, &set, &err));
    CHECK_EQ_INT(err.status, CP_ERR_CONFIG);
    CHECK(msg_has(&err, "no profiles") && msg_has(&err, "empty"));
    CHECK(!profiles_load_dir("/nonexistent/profiles", &set, &err));
    CHECK(msg_has(&err, "/nonexistent/profiles"));
}

TEST(to_cjson_describes_everything)
{
    profile p;
    cp_error err;
    CHECK(parse_variant("\"floor\"", "\"half_even\"", &p, &err));
    cJSON *j = profile_to_cjson(&p);
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(j, "crop");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "output");
    const cJSON *resize = cJSON_GetObjectItemCaseSensitive(j, "resize");
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name")), "t") == 0);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "resample")),
                 "bicubic") == 0);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(crop, "rounding")),
                 "half_even") == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(resize, "shortest_edge")) == 224);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "width")) == 224);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "height")) == 224);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "channels")) == 3);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "mean")) == 3);
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "std"), 2)) ==
          OPENAI_STD_2);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "exif")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "rescale_factor")) ==
          0.00392156862745098);

    /* without "output" the description is a valid profile file that parses to the same */
    cJSON_DeleteItemFromObjectCaseSensitive(j, "output");
    char *text = cJSON_Print(j);
    profile q;
    CHECK(profile_parse_json(text, &q, &err));
    CHECK(memcmp(&p, &q, sizeof p) == 0);
    cJSON_free(text);
    cJSON_Delete(j);

    /* exact resize, no crop */
    CHECK(parse_variant("{\"shortest_edge\": 224}, \"crop\": {\"height\": 224, \"width\": 224, "
                        "\"rounding\": \"floor\"}",
                        "{\"height\": 384, \"width\": 256}, \"crop\": null", &p, &err));
    CHECK_EQ_INT(p.out_width, 256);
    CHECK_EQ_INT(p.out_height, 384);
    j = profile_to_cjson(&p);
    CHECK(j != NULL);
    if (!j) return;
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "crop")));
    resize = cJSON_GetObjectItemCaseSensitive(j, "resize");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(resize, "height")) == 384);
    CHECK(cJSON_GetObjectItemCaseSensitive(resize, "shortest_edge") == NULL);
    out = cJSON_GetObjectItemCaseSensitive(j, "output");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(out, "width")) == 256);
    cJSON_Delete(j);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clipprep-test-profile-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(shipped_profiles_load_with_documented_values);
    RUN(valid_profile_and_defaults);
    RUN(validation_errors_name_the_key);
    RUN(references_and_their_default);
    RUN(load_dir_sorted_and_checked);
    RUN(to_cjson_describes_everything);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
