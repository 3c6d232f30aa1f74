/* test_profile_import.c — model configs as profiles (server/profile_import.c): format
 * recognition, what a Hugging Face preprocessor_config.json and an open_clip_config.json
 * resolve to (defaults, old and new size forms), every refused key named in the error, model
 * folders and NAME.json files in profiles_dir, the native round trip of `profile import`, the
 * longest-edge geometry (open_clip ResizeKeepRatio, half-even ties, odd padding) and the padding
 * colour on the CPU path and the batch (GPU) twin. Values the real libraries give are checked
 * end to end in tests/reference/test_model_configs.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "geometry.h"
#include "normalize.h"
#include "plan.h"
#include "preprocess.h"
#include "profile.h"
#include "profile_import.h"
#include "test.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

static const char *sub_path(const char *a, const char *b)
{
    static char buf[4][600];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 600, "%s/%s", a, b);
    return p;
}

static const char *fresh_dir(const char *name)
{
    static char dirs[4][600];
    static int slot;
    char *p = dirs[slot++ % 4];
    snprintf(p, 600, "%s/%s", tmpdir, name);
    mkdir(p, 0700);
    return p;
}

static bool has(const cp_error *e, const char *s) { return strstr(e->message, s) != NULL; }

#define OPENAI_MEAN "[0.48145466, 0.4578275, 0.40821073]"
#define OPENAI_STD "[0.26862954, 0.26130258, 0.27577711]"

/* openai/clip-vit-base-patch32 as published (old CLIPFeatureExtractor form) */
static const char HF_CLIP_OLD[] =
    "{\"crop_size\": 224, \"do_center_crop\": true, \"do_normalize\": true, \"do_resize\": true,"
    " \"feature_extractor_type\": \"CLIPFeatureExtractor\", \"image_mean\": " OPENAI_MEAN ","
    " \"image_std\": " OPENAI_STD ", \"resample\": 3, \"size\": 224}";
/* google/siglip2-base-patch16-256 (fixed resolution) */
static const char HF_SIGLIP2[] =
    "{\"do_convert_rgb\": null, \"do_normalize\": true, \"do_rescale\": true, \"do_resize\": true,"
    " \"image_mean\": [0.5, 0.5, 0.5], \"image_processor_type\": \"SiglipImageProcessor\","
    " \"image_std\": [0.5, 0.5, 0.5], \"processor_class\": \"SiglipProcessor\", \"resample\": 2,"
    " \"rescale_factor\": 0.00392156862745098, \"size\": {\"height\": 256, \"width\": 256}}";

static bool hf(const char *text, profile *p, cp_error *e)
{
    e->message[0] = 0;
    return profile_from_config(text, CONFIG_HF, "m", p, e);
}

static bool oc(const char *text, profile *p, cp_error *e)
{
    e->message[0] = 0;
    return profile_from_config(text, CONFIG_OPEN_CLIP, "m", p, e);
}

/* HF_CLIP_OLD with `extra` members appended (later duplicates are not allowed: use keys it
 * lacks, or a full text) */
static bool hf_plus(const char *extra, profile *p, cp_error *e)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"image_processor_type\": \"CLIPImageProcessor\"%s%s}",
             extra[0] ? ", " : "", extra);
    return hf(text, p, e);
}

static bool oc_pre(int image_size, const char *preprocess, profile *p, cp_error *e)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model_cfg\": {\"embed_dim\": 512, \"vision_cfg\": {\"image_size\": %d}},"
             " \"preprocess_cfg\": {%s}}",
             image_size, preprocess);
    return oc(text, p, e);
}

TEST(format_is_recognised_from_keys)
{
    CHECK_EQ_INT(config_format_of(HF_CLIP_OLD), CONFIG_HF);
    CHECK_EQ_INT(config_format_of(HF_SIGLIP2), CONFIG_HF);
    CHECK_EQ_INT(config_format_of("{\"model_cfg\": {}, \"preprocess_cfg\": {}}"),
                 CONFIG_OPEN_CLIP);
    CHECK_EQ_INT(config_format_of("{\"name\": \"x\", \"resize\": {}}"), CONFIG_NATIVE);
    CHECK_EQ_INT(config_format_of("{\"hello\": 1}"), CONFIG_UNRECOGNISED);
    CHECK_EQ_INT(config_format_of("[1]"), CONFIG_UNRECOGNISED);
}

TEST(hf_configs_resolve_like_transformers)
{
    profile p;
    cp_error e;
    CHECK(hf(HF_CLIP_OLD, &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_SHORTEST_EDGE); /* CLIP: an int size is the shortest edge */
    CHECK_EQ_INT(p.shortest_edge, 224);
    CHECK_EQ_INT(p.crop, CROP_FLOOR);
    CHECK_EQ_INT(p.crop_width, 224);
    CHECK_EQ_INT(p.filter, FILTER_BICUBIC);
    CHECK(p.rescale_factor == 0.00392156862745098);
    CHECK(p.mean[0] == 0.48145466 && p.std[2] == 0.27577711);
    CHECK(!p.default_ref_set); /* the daemon-wide default reference applies */
    CHECK(strcmp(p.name, "m") == 0);

    CHECK(hf(HF_SIGLIP2, &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_EXACT);
    CHECK_EQ_INT(p.out_width, 256);
    CHECK_EQ_INT(p.crop, CROP_NONE);
    CHECK_EQ_INT(p.filter, FILTER_BILINEAR);
    CHECK(p.mean[1] == 0.5 && p.std[1] == 0.5);

    /* class defaults: CLIP = shortest 224 + crop 224, bicubic, OpenAI statistics */
    CHECK(hf_plus("", &p, &e));
    CHECK_EQ_INT(p.shortest_edge, 224);
    CHECK_EQ_INT(p.crop_height, 224);
    /* ViT: an int size is square, bilinear, 0.5 */
    CHECK(hf("{\"image_processor_type\": \"ViTImageProcessor\", \"size\": 384}", &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_EXACT);
    CHECK_EQ_INT(p.resize_height, 384);
    CHECK_EQ_INT(p.filter, FILTER_BILINEAR);
    CHECK(hf("{\"feature_extractor_type\": \"ViTFeatureExtractor\", \"size\": [200, 300]}", &p,
             &e));
    CHECK_EQ_INT(p.out_height, 200);
    CHECK_EQ_INT(p.out_width, 300);
    /* Fast and Pil class names are the same family */
    CHECK(hf("{\"image_processor_type\": \"SiglipImageProcessorFast\"}", &p, &e));
    CHECK_EQ_INT(p.out_width, 224);
    CHECK(hf("{\"image_processor_type\": \"CLIPImageProcessorPil\", \"crop_size\": "
             "{\"height\": 200, \"width\": 210}, \"size\": {\"shortest_edge\": 220}}",
             &p, &e));
    CHECK_EQ_INT(p.out_height, 200);
    CHECK_EQ_INT(p.out_width, 210);
    /* no normalisation, no rescale, a mean given as one number */
    CHECK(hf_plus("\"do_normalize\": false", &p, &e));
    CHECK(p.mean[0] == 0 && p.std[0] == 1 && p.rescale_factor == 0.00392156862745098);
    CHECK(hf_plus("\"do_rescale\": false, \"image_mean\": 0.25", &p, &e));
    CHECK(p.rescale_factor == 1.0 && p.mean[2] == 0.25);
    /* null means the class default; do_convert_rgb either way */
    CHECK(hf_plus("\"resample\": null, \"do_convert_rgb\": false, \"size\": null", &p, &e));
    CHECK_EQ_INT(p.filter, FILTER_BICUBIC);
    CHECK(hf_plus("\"use_square_size\": true", &p, &e)); /* Kosmos-2 switch */
    CHECK_EQ_INT(p.resize, RESIZE_EXACT);
}

TEST(hf_refusals_name_the_key)
{
    profile p;
    cp_error e;
    static const struct {
        const char *extra, *expect1, *expect2;
    } cases[] = {
        {"\"resample\": 1", "\"resample\"", "LANCZOS"},
        {"\"resample\": 0", "\"resample\"", "NEAREST"},
        {"\"resample\": 4", "\"resample\"", "BOX"},
        {"\"resample\": 5", "\"resample\"", "HAMMING"},
        {"\"resample\": 6", "\"resample\"", "0..5"},
        {"\"resample\": \"bicubic\"", "\"resample\"", "code"},
        {"\"size\": {\"longest_edge\": 224}", "size.longest_edge", "not supported"},
        {"\"size\": {\"shortest_edge\": 224, \"longest_edge\": 300}", "size.longest_edge",
         "not supported"},
        {"\"size\": {\"max_height\": 224, \"max_width\": 224}", "size.max_height", "not supported"},
        {"\"size\": {\"shortest_edge\": 224, \"height\": 224}", "\"size\"", "contradict"},
        {"\"size\": {\"height\": 224}", "\"size\"", "both height and width"},
        {"\"size\": 0", "\"size\"", "1..4096"},
        {"\"size\": [1, 2, 3]", "\"size\"", "[height, width]"},
        {"\"crop_size\": {\"shortest_edge\": 224}", "crop_size", "height and width"},
        {"\"do_resize\": false", "do_resize", "not supported"},
        {"\"do_center_crop\": false", "\"size\"", "varies per image"},
        {"\"do_center_crop\": 1", "do_center_crop", "true, false or null"},
        {"\"do_pad\": true", "do_pad", "not supported"},
        {"\"crop_pct\": 0.9", "\"crop_pct\"", "unknown key"},
        {"\"image_mean\": [0.5, 0.5]", "image_mean", "RGB"},
        {"\"image_std\": [0.5, 0, 0.5]", "image_std", "> 0"},
        {"\"rescale_factor\": -1", "rescale_factor", "> 0"},
        {"\"data_format\": \"channels_last\"", "data_format", "channels-first"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = hf_plus(cases[i].extra, &p, &e);
        if (ok || !has(&e, cases[i].expect1) || !has(&e, cases[i].expect2) ||
            e.status != CP_ERR_CONFIG) {
            fprintf(stderr, "    case %zu (%s): ok=%d \"%s\"\n", i, cases[i].extra, ok, e.message);
            CHECK(0);
        }
    }
    /* processor types */
    /* SigLIP 2 NaFlex is its VLM family's (vlm/siglip2_naflex.c): the class defaults */
    CHECK(hf("{\"image_processor_type\": \"Siglip2ImageProcessor\"}", &p, &e));
    CHECK(p.vlm.kind == VLM_SIGLIP2_NAFLEX && p.vlm.patch_size == 16 &&
          p.vlm.max_num_patches == 256 && p.filter == FILTER_BILINEAR);
    CHECK(hf("{\"image_processor_type\": \"Siglip2ImageProcessorFast\", "
             "\"max_num_patches\": 1024}", &p, &e));
    CHECK(p.vlm.kind == VLM_SIGLIP2_NAFLEX && p.vlm.max_num_patches == 1024);
    CHECK(!hf("{\"image_processor_type\": \"Siglip2ImageProcessor\", \"do_resize\": false}",
              &p, &e));
    CHECK(has(&e, "do_resize"));
    CHECK(!hf("{\"image_processor_type\": \"DetrImageProcessor\"}", &p, &e));
    CHECK(has(&e, "image_processor_type") && has(&e, "DetrImageProcessor") &&
          has(&e, "not supported"));
    CHECK(!hf("{\"do_resize\": true}", &p, &e));
    CHECK(has(&e, "image_processor_type") && has(&e, "required"));
    CHECK(!hf("{\"image_processor_type\": 3}", &p, &e));
    CHECK(has(&e, "image_processor_type"));
}

TEST(open_clip_configs_resolve_like_open_clip)
{
    profile p;
    cp_error e;
    /* PreprocessCfg defaults; the size is the vision tower's */
    CHECK(oc_pre(240, "", &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_SHORTEST_EDGE);
    CHECK_EQ_INT(p.shortest_edge, 240);
    CHECK_EQ_INT(p.crop, CROP_HALF_EVEN);
    CHECK_EQ_INT(p.out_width, 240);
    CHECK_EQ_INT(p.filter, FILTER_BICUBIC);
    CHECK(p.mean[0] == 0.48145466 && p.std[0] == 0.26862954);
    CHECK(p.default_ref_set && p.default_ref == REF_OPEN_CLIP);
    CHECK(p.fill[0] == 0 && p.fill[1] == 0 && p.fill[2] == 0);
    /* DFN5B-378: squash */
    CHECK(oc_pre(378, "\"mean\": " OPENAI_MEAN ", \"std\": " OPENAI_STD
                      ", \"interpolation\": \"bicubic\", \"resize_mode\": \"squash\"",
                 &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_EXACT);
    CHECK_EQ_INT(p.resize_width, 378);
    CHECK_EQ_INT(p.crop, CROP_NONE);
    /* MobileCLIP: bilinear, no normalisation */
    CHECK(oc_pre(256, "\"mean\": [0.0, 0.0, 0.0], \"std\": [1.0, 1.0, 1.0], "
                      "\"interpolation\": \"bilinear\", \"resize_mode\": \"shortest\"",
                 &p, &e));
    CHECK_EQ_INT(p.filter, FILTER_BILINEAR);
    CHECK(p.mean[0] == 0 && p.std[0] == 1);
    /* longest + fill (int and list), scalar mean/std, "random" evaluates as bicubic */
    CHECK(oc_pre(224, "\"resize_mode\": \"longest\", \"fill_color\": 128, \"mean\": 0.5, "
                      "\"std\": 0.25, \"interpolation\": \"random\"",
                 &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_LONGEST);
    CHECK_EQ_INT(p.crop, CROP_HALF_EVEN);
    CHECK(p.fill[0] == 128 && p.fill[2] == 128 && p.mean[1] == 0.5 && p.std[2] == 0.25);
    CHECK_EQ_INT(p.filter, FILTER_BICUBIC);
    CHECK(oc("{\"model_cfg\": {\"vision_cfg\": {\"image_size\": [192, 256]}}, "
             "\"preprocess_cfg\": {\"resize_mode\": \"longest\", \"fill_color\": [1, 2, 3]}}",
             &p, &e));
    CHECK_EQ_INT(p.resize_height, 192);
    CHECK_EQ_INT(p.resize_width, 256);
    CHECK_EQ_INT(p.out_height, 192);
    CHECK_EQ_INT(p.out_width, 256);
    CHECK(p.fill[0] == 1 && p.fill[1] == 2 && p.fill[2] == 3);
    /* no model_cfg: preprocess_cfg.size; neither: 224 */
    CHECK(oc("{\"preprocess_cfg\": {\"size\": 336, \"resize_mode\": \"squash\"}}", &p, &e));
    CHECK_EQ_INT(p.out_width, 336);
    CHECK(oc("{\"preprocess_cfg\": {}}", &p, &e));
    CHECK_EQ_INT(p.out_width, 224);
    /* null members are open_clip's "not given" */
    CHECK(oc_pre(224, "\"mean\": null, \"resize_mode\": null", &p, &e));
    CHECK_EQ_INT(p.resize, RESIZE_SHORTEST_EDGE);
}

TEST(open_clip_refusals_name_the_key)
{
    profile p;
    cp_error e;
    static const struct {
        const char *pre, *expect1, *expect2;
    } cases[] = {
        {"\"resize_mode\": \"center\"", "preprocess_cfg.resize_mode", "\"center\""},
        {"\"interpolation\": \"nearest\"", "preprocess_cfg.interpolation", "\"bilinear\""},
        {"\"interpolation\": 3", "preprocess_cfg.interpolation", "expected"},
        {"\"mode\": \"L\"", "preprocess_cfg.mode", "\"RGB\""},
        {"\"fill_color\": 300", "preprocess_cfg.fill_color", "0..255"},
        {"\"fill_color\": [1, 2]", "preprocess_cfg.fill_color", "3"},
        {"\"fill_color\": 1.5", "preprocess_cfg.fill_color", "integer"},
        {"\"crop_pct\": 1.0", "preprocess_cfg.crop_pct", "unknown key"},
        {"\"std\": 0", "preprocess_cfg.std", "> 0"},
        {"\"mean\": [0.1, 0.2, 0.3, 0.4]", "preprocess_cfg.mean", "RGB"},
        {"\"size\": -3", "preprocess_cfg.size", "1..4096"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = oc_pre(224, cases[i].pre, &p, &e);
        if (ok || !has(&e, cases[i].expect1) || !has(&e, cases[i].expect2)) {
            fprintf(stderr, "    case %zu (%s): ok=%d \"%s\"\n", i, cases[i].pre, ok, e.message);
            CHECK(0);
        }
    }
    CHECK(!oc("{\"model_cfg\": {\"vision_cfg\": {\"image_size\": [192, 256]}}, "
              "\"preprocess_cfg\": {}}",
              &p, &e));
    CHECK(has(&e, "preprocess_cfg.resize_mode") && has(&e, "non-square"));
    CHECK(!oc("{\"model_cfg\": {\"vision_cfg\": {\"image_size\": 0}}}", &p, &e));
    CHECK(has(&e, "model_cfg.vision_cfg.image_size"));
    CHECK(!oc("{\"model_cfg\": {}, \"preprocess_cfg\": {}, \"extra\": 1}", &p, &e));
    CHECK(has(&e, "\"extra\""));
    CHECK(!oc("[1, 2]", &p, &e) && !hf("[{}]", &p, &e) && !hf("\"x\"", &p, &e));
    CHECK(has(&e, "JSON object"));
    CHECK(!oc("{\"model_cfg\": [], \"preprocess_cfg\": {}}", &p, &e));
    CHECK(has(&e, "model_cfg"));
}

TEST(profiles_dir_holds_model_files_and_folders)
{
    profile_set set = {0};
    cp_error e;
    const char *d = fresh_dir("models");
    write_file(sub_path(d, "openai-clip.json"), HF_CLIP_OLD);
    mkdir(sub_path(d, "DFN5B-CLIP-ViT-H-14-378"), 0700);
    write_file(sub_path(sub_path(d, "DFN5B-CLIP-ViT-H-14-378"), "open_clip_config.json"),
               "{\"model_cfg\": {\"vision_cfg\": {\"image_size\": 378}}, \"preprocess_cfg\": "
               "{\"resize_mode\": \"squash\"}}");
    write_file(sub_path(sub_path(d, "DFN5B-CLIP-ViT-H-14-378"), "preprocessor_config.json"),
               "{\"crop_size\": 378, \"do_center_crop\": true, \"feature_extractor_type\": "
               "\"CLIPFeatureExtractor\", \"size\": 378}");
    write_file(sub_path(sub_path(d, "DFN5B-CLIP-ViT-H-14-378"), "config.json"), "{}");
    mkdir(sub_path(d, "siglip2"), 0700);
    write_file(sub_path(sub_path(d, "siglip2"), "preprocessor_config.json"), HF_SIGLIP2);
    CHECK(profiles_load_dir(d, &set, &e));
    CHECK_EQ_INT(set.count, 3);
    const profile *p = profiles_find(&set, "openai-clip");
    CHECK(p && p->resize == RESIZE_SHORTEST_EDGE && p->crop == CROP_FLOOR);
    p = profiles_find(&set, "DFN5B-CLIP-ViT-H-14-378");
    CHECK(p && p->resize == RESIZE_EXACT && p->crop == CROP_NONE && p->out_width == 378);
    p = profiles_find(&set, "siglip2");
    CHECK(p && p->filter == FILTER_BILINEAR && p->out_width == 256);
    profiles_free(&set);

    /* the two configs of DFN5B disagree: a warning says how */
    char warning[1024];
    profile q;
    CHECK(profile_import_path(sub_path(d, "DFN5B-CLIP-ViT-H-14-378"), NULL, &q, warning,
                              sizeof warning, &e));
    CHECK(strstr(warning, "disagree") && strstr(warning, "squash to 378x378") &&
          strstr(warning, "crop 378x378"));
    CHECK(strcmp(q.name, "DFN5B-CLIP-ViT-H-14-378") == 0);
    /* a config file inside a model folder is named after the folder */
    CHECK(profile_import_path(sub_path(sub_path(d, "siglip2"), "preprocessor_config.json"),
                              NULL, &q, warning, sizeof warning, &e));
    CHECK(strcmp(q.name, "siglip2") == 0 && !warning[0]);

    /* bad configs stop the load, naming the file and the key */
    const char *b = fresh_dir("bad-models");
    write_file(sub_path(b, "m.json"), "{\"image_processor_type\": \"CLIPImageProcessor\", "
                                      "\"resample\": 1}");
    CHECK(!profiles_load_dir(b, &set, &e));
    CHECK(has(&e, "m.json") && has(&e, "\"resample\"") && has(&e, "LANCZOS"));
    CHECK(set.count == 0 && set.items == NULL);
    unlink(sub_path(b, "m.json"));
    mkdir(sub_path(b, "empty-model"), 0700);
    CHECK(!profiles_load_dir(b, &set, &e));
    CHECK(has(&e, "empty-model") && has(&e, "neither"));
    rmdir(sub_path(b, "empty-model"));
    mkdir(sub_path(b, "bad name"), 0700);
    write_file(sub_path(sub_path(b, "bad name"), "preprocessor_config.json"), HF_SIGLIP2);
    CHECK(!profiles_load_dir(b, &set, &e));
    CHECK(has(&e, "bad name") && has(&e, "letters, digits"));
    unlink(sub_path(sub_path(b, "bad name"), "preprocessor_config.json"));
    rmdir(sub_path(b, "bad name"));
    write_file(sub_path(b, "x.json"), "{\"hello\": 1}");
    CHECK(!profiles_load_dir(b, &set, &e));
    CHECK(has(&e, "x.json"));
}

TEST(native_round_trip_of_new_keys)
{
    profile p, q;
    cp_error e;
    CHECK(oc("{\"model_cfg\": {\"vision_cfg\": {\"image_size\": [192, 256]}}, "
             "\"preprocess_cfg\": {\"resize_mode\": \"longest\", \"fill_color\": [1, 2, 3]}}",
             &p, &e));
    snprintf(p.models[0], sizeof p.models[0], "org/model-a");
    p.n_models = 1;
    cJSON *j = profile_to_native_cjson(&p);
    CHECK(j != NULL);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    CHECK(text && !strstr(text, "\"output\""));
    CHECK(text && profile_parse_json(text, &q, &e));
    CHECK_EQ_INT(q.resize, RESIZE_LONGEST);
    CHECK_EQ_INT(q.resize_height, 192);
    CHECK_EQ_INT(q.resize_width, 256);
    CHECK(q.fill[0] == 1 && q.fill[1] == 2 && q.fill[2] == 3);
    CHECK(q.default_ref_set && q.default_ref == REF_OPEN_CLIP);
    CHECK(q.n_models == 1 && strcmp(q.models[0], "org/model-a") == 0);
    free(text);
    cJSON_Delete(j);

    /* an HF import leaves default_reference to the daemon */
    CHECK(hf(HF_SIGLIP2, &p, &e));
    j = profile_to_native_cjson(&p);
    CHECK(j && !cJSON_GetObjectItemCaseSensitive(j, "default_reference"));
    cJSON_Delete(j);

    /* the square form and native refusals */
    CHECK(profile_parse_json("{\"name\": \"l\", \"resize\": {\"longest_edge\": 224}, \"crop\": "
                             "{\"height\": 224, \"width\": 224, \"rounding\": \"half_even\"}, "
                             "\"resample\": 3, \"mean\": [0,0,0], \"std\": [1,1,1], "
                             "\"fill\": [9, 9, 9]}",
                             &q, &e));
    CHECK_EQ_INT(q.resize, RESIZE_LONGEST);
    CHECK(!profile_parse_json("{\"name\": \"l\", \"resize\": {\"longest_edge\": 224}, \"crop\": "
                              "null, \"resample\": 3, \"mean\": [0,0,0], \"std\": [1,1,1]}",
                              &q, &e));
    CHECK(has(&e, "longest_edge") && has(&e, "varies"));
    CHECK(!profile_parse_json("{\"name\": \"l\", \"resize\": {\"height\": 2, \"width\": 2, "
                              "\"keep_aspect\": \"shortest\"}, \"crop\": null, \"resample\": 3, "
                              "\"mean\": [0,0,0], \"std\": [1,1,1]}",
                              &q, &e));
    CHECK(has(&e, "resize.keep_aspect"));
    CHECK(!profile_parse_json("{\"name\": \"l\", \"resize\": {\"height\": 2, \"width\": 2}, "
                              "\"crop\": null, \"resample\": 3, \"mean\": [0,0,0], "
                              "\"std\": [1,1,1], \"fill\": [0, 256, 0]}",
                              &q, &e));
    CHECK(has(&e, "\"fill\""));
    CHECK(!profile_parse_json("{\"name\": \"l\", \"resize\": {\"height\": 2, \"width\": 2}, "
                              "\"crop\": null, \"resample\": 3, \"mean\": [0,0,0], "
                              "\"std\": [1,1,1], \"models\": [\"\"]}",
                              &q, &e));
    CHECK(has(&e, "\"models\""));
}

TEST(longest_edge_geometry_is_open_clips)
{
    profile p = {.resize = RESIZE_LONGEST, .resize_width = 224, .resize_height = 224,
                 .crop = CROP_HALF_EVEN, .crop_width = 224, .crop_height = 224};
    image_geometry g;
    geometry_compute(&p, 640, 480, &g); /* ratio 640/224: 224 x round(168.0) */
    CHECK(g.resized_w == 224 && g.resized_h == 168 && g.top == -28 && g.left == 0);
    geometry_compute(&p, 301, 200, &g); /* 200/1.34375 = 148.84 -> 149; pad 75: 37 top */
    CHECK(g.resized_w == 224 && g.resized_h == 149 && g.top == -37);
    geometry_compute(&p, 1, 1, &g); /* upscaled to the box */
    CHECK(g.resized_w == 224 && g.resized_h == 224 && g.top == 0 && g.left == 0);
    geometry_compute(&p, 3, 1000, &g); /* a side that rounds to 0 is kept at 1 */
    CHECK(g.resized_h == 224 && g.resized_w == 1);
    profile t = {.resize = RESIZE_LONGEST, .resize_width = 4, .resize_height = 4,
                 .crop = CROP_HALF_EVEN, .crop_width = 4, .crop_height = 4};
    geometry_compute(&t, 8, 3, &g); /* 1.5 -> 2 (half to even) */
    CHECK(g.resized_w == 4 && g.resized_h == 2);
    geometry_compute(&t, 8, 5, &g); /* 2.5 -> 2 */
    CHECK(g.resized_h == 2);
    geometry_compute(&t, 8, 7, &g); /* 3.5 -> 4 */
    CHECK(g.resized_h == 4);
    /* a non-square box: the tighter ratio wins */
    profile r = {.resize = RESIZE_LONGEST, .resize_width = 256, .resize_height = 192,
                 .crop = CROP_HALF_EVEN, .crop_width = 256, .crop_height = 192};
    geometry_compute(&r, 100, 100, &g);
    CHECK(g.resized_w == 192 && g.resized_h == 192 && g.left == -32 && g.top == 0);
    geometry_compute(&r, 1000, 100, &g);
    CHECK(g.resized_w == 256 && g.resized_h == 26 && g.top == -83); /* pad 166: 83 + 83 */
    CHECK(fast_scale_denom(&p, 4000, 3000, 2) == 8); /* target short side 168: 375 >= 336 */
    CHECK(fast_scale_denom(&p, 1600, 1200, 2) == 2); /* 150 < 336 <= 600 */
}

TEST(padding_takes_the_profiles_fill_on_cpu_and_batch_twin)
{
    enum { W = 10, H = 4, OUT = 12 };
    uint8_t src[W * H * 3 + 64];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 37 + 11);
    resize_plan plan;
    /* no resize, a 12x12 window around the 10x4 image: padding on all sides */
    CHECK(resize_plan_build(&plan, W, H, W, H, -4, -1, OUT, OUT, FILTER_BICUBIC));
    static normalize_table tables[1];
    double mean[3] = {0.5, 0.25, 0.125}, stdv[3] = {0.5, 0.5, 0.25};
    normalize_table_build(&tables[0], 0.00392156862745098, mean, stdv);
    CHECK(tables[0].fill[0] == 0 && tables[0].fill[1] == 0 && tables[0].fill[2] == 0);
    tables[0].fill[0] = 124;
    tables[0].fill[1] = 116;
    tables[0].fill[2] = 104;
    static float cpu[3 * OUT * OUT], twin[3 * OUT * OUT];
    uint8_t *tmp = malloc(resize_plan_scratch_bytes(&plan) + 256);
    preprocess_image_cpu(&plan, src, W * 3, &tables[0], DTYPE_FLOAT32, cpu, tmp);
    for (int c = 0; c < 3; c++) {
        CHECK(cpu[c * OUT * OUT + 0] == tables[0].f32[c][tables[0].fill[c]]);   /* corner */
        CHECK(cpu[c * OUT * OUT + 11 * OUT + 5] == tables[0].f32[c][tables[0].fill[c]]);
        CHECK(cpu[c * OUT * OUT + 4 * OUT + 1] == tables[0].f32[c][src[c]]); /* image (0,0) */
    }
    batch_layout b = {0};
    CHECK(batch_layout_add(&b, &plan, 0, 0, DTYPE_FLOAT32));
    uint8_t *btmp = calloc(1, b.tmp_bytes + 256);
    float *bout = calloc(1, b.out_bytes + 64);
    batch_run_host(&b, src, btmp, tables, bout);
    memcpy(twin, bout, sizeof twin);
    CHECK(memcmp(cpu, twin, sizeof cpu) == 0);
    free(tmp);
    free(btmp);
    free(bout);
    batch_layout_free(&b);
    resize_plan_free(&plan);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clipprep-import-test-%d", (int)getpid());
    mkdir(tmpdir, 0700);
    RUN(format_is_recognised_from_keys);
    RUN(hf_configs_resolve_like_transformers);
    RUN(hf_refusals_name_the_key);
    RUN(open_clip_configs_resolve_like_open_clip);
    RUN(open_clip_refusals_name_the_key);
    RUN(profiles_dir_holds_model_files_and_folders);
    RUN(native_round_trip_of_new_keys);
    RUN(longest_edge_geometry_is_open_clips);
    RUN(padding_takes_the_profiles_fill_on_cpu_and_batch_twin);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
