/* C tests of libchangetrack: run by ffi/tests/c_api.rs under ASan+UBSan and under valgrind.
 * argv[1]: a fresh store directory; argv[2..4]: the three corpus binlogs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changetrack.h"

static int failures = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            char msg_[512];                                                              \
            ct_last_error_message(msg_, sizeof msg_);                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, \
                    #cond, msg_);                                                        \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

static const char *PW = "C_api_pass1";

/* Consumes everything; returns the count; optionally commits at record `commit_at` (1-based)
 * and remembers the first seq seen. */
static long consume_all(ct_consumer *c, long commit_at, uint64_t *first_seq, int *saw_t_int) {
    long n = 0;
    const ct_record *r = NULL;
    ct_result res;
    while ((res = ct_consumer_next(c, 200, &r)) == CT_OK) {
        n++;
        uint64_t seq = 0;
        CHECK(ct_record_seq(r, &seq) == CT_OK);
        if (n == 1 && first_seq) *first_seq = seq;
        char table[64];
        size_t len = 0;
        CHECK(ct_record_table(r, table, sizeof table, &len) == CT_OK);
        ct_op op;
        CHECK(ct_record_op(r, &op) == CT_OK);
        if (saw_t_int && strcmp(table, "t_int") == 0 && op == CT_OP_INSERT) {
            /* Field 0 is `pk` (INT, code 3); field 2 `tiu` TINYINT UNSIGNED. */
            char name[32];
            CHECK(ct_record_field_name(r, 0, name, sizeof name, &len) == CT_OK);
            CHECK(strcmp(name, "pk") == 0);
            uint8_t type = 0;
            CHECK(ct_record_field_type(r, 0, &type) == CT_OK && type == 3);
            char value[64];
            int is_null = -1;
            CHECK(ct_record_field_value(r, 0, 1, value, sizeof value, &len, &is_null) == CT_OK);
            CHECK(is_null == 0 && len > 0);
            CHECK(ct_record_field_value(r, 0, 0, value, sizeof value, &len, &is_null) == CT_OK);
            CHECK(is_null == 1); /* an INSERT has no before-image */
            *saw_t_int += 1;
            const uint8_t *avro = NULL;
            size_t avro_len = 0;
            CHECK(ct_record_avro(r, &avro, &avro_len) == CT_OK && avro != NULL && avro_len > 20);
        }
        if (n == commit_at) CHECK(ct_consumer_commit(c, r) == CT_OK);
    }
    CHECK(res == CT_END);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_api STORE_DIR BINLOG1 BINLOG2 BINLOG3\n");
        return 2;
    }
    const char *dir = argv[1];
    const char *files[3] = {argv[2], argv[3], argv[4]};
    char msg[256];

    CHECK(ct_version() != NULL && strlen(ct_version()) > 0);

    /* Error paths: NULL arguments, a bad path. Outputs stay untouched on failure. */
    ct_store *s = (ct_store *)0x1;
    CHECK(ct_store_open(NULL, &s) == CT_NULL_ARGUMENT);
    CHECK(s == (ct_store *)0x1);
    CHECK(ct_last_error_message(msg, sizeof msg) > 0 && strstr(msg, "NULL") != NULL);
    CHECK(ct_store_open(dir, NULL) == CT_NULL_ARGUMENT);
    CHECK(ct_store_open("/proc/changetrack/no/such/dir", &s) != CT_OK);
    CHECK(s == (ct_store *)0x1);
    ct_store_free(NULL);
    ct_consumer_free(NULL);

    /* Open, ingest the corpus, create a group. */
    s = NULL;
    CHECK(ct_store_open(dir, &s) == CT_OK && s != NULL);
    CHECK(ct_store_ingest_files(s, files, 3) == CT_OK);
    CHECK(ct_store_ingest_files(s, NULL, 3) == CT_NULL_ARGUMENT);
    char id[32];
    size_t id_len = 0;
    char tiny[4];
    CHECK(ct_group_create(s, "c-tests", "capi", PW, tiny, sizeof tiny, &id_len) == CT_BUFFER_TOO_SMALL);
    CHECK(ct_group_create(s, "c-tests", "capi", "weak", id, sizeof id, &id_len) == CT_INVALID_ARGUMENT);
    CHECK(ct_group_create(s, "c-tests", "capi", PW, id, sizeof id, &id_len) == CT_OK);
    CHECK(id_len == 20 && strlen(id) == 20);
    CHECK(ct_group_create(s, "c-tests", "capi", PW, id, sizeof id, &id_len) == CT_ALREADY_EXISTS);

    /* Lengths and too-small buffers. */
    size_t len = 0;
    CHECK(ct_store_data_range(s, NULL, 0, &len) == CT_OK && len > 10);
    char range[512];
    CHECK(ct_store_data_range(s, range, 5, &len) == CT_BUFFER_TOO_SMALL);
    CHECK(ct_store_data_range(s, range, sizeof range, &len) == CT_OK);
    CHECK(strstr(range, "\"oldest\"") != NULL);

    /* A wrong password; then consume everything, committing at record 100. */
    ct_consumer *c = NULL;
    CHECK(ct_consumer_open(s, id, "capi", "Wrong_pass1", &c) == CT_UNAUTHORIZED && c == NULL);
    CHECK(ct_consumer_open(s, id, "capi", PW, &c) == CT_OK && c != NULL);
    ct_consumer *second = NULL;
    CHECK(ct_consumer_open(s, id, "capi", PW, &second) == CT_BUSY && second == NULL);
    CHECK(ct_consumer_next(c, 0, NULL) == CT_NULL_ARGUMENT);
    int saw = 0;
    uint64_t first = 0;
    long n = consume_all(c, 100, &first, &saw);
    CHECK(n == 840);
    CHECK(first == 1);
    CHECK(saw > 0);
    ct_consumer_free(c);

    /* Queries and group listing. */
    char *big = malloc(1 << 20);
    CHECK(ct_query(s, "{\"table\":\"corpus.t_int\",\"from_time\":0,\"limit\":5}", big, 1 << 20, &len) == CT_OK);
    CHECK(strstr(big, "\"t_int\"") != NULL);
    CHECK(ct_query(s, "{\"where\":[\"x ~ 1\"]}", big, 1 << 20, &len) == CT_INVALID_ARGUMENT);
    CHECK(ct_group_list(s, big, 1 << 20, &len) == CT_OK && strstr(big, "\"committed_seq\":100") != NULL);
    free(big);

    /* Reopen and resume: nothing redelivered. */
    ct_store_free(s);
    s = NULL;
    CHECK(ct_store_open(dir, &s) == CT_OK);
    CHECK(ct_consumer_open(s, id, "capi", PW, &c) == CT_OK);
    first = 0;
    n = consume_all(c, -1, &first, NULL);
    CHECK(first == 101);
    CHECK(n == 840 - 100);
    CHECK(ct_consumer_seek_checkpoint(c, "not a checkpoint") == CT_INVALID_ARGUMENT);
    CHECK(ct_consumer_seek_timestamp(c, 1) == CT_OUT_OF_RANGE);
    ct_consumer_free(c);

    /* Password change and delete. */
    CHECK(ct_group_change_password(s, id, "Wrong_pass1", "New_pass22") == CT_UNAUTHORIZED);
    CHECK(ct_group_change_password(s, id, PW, "New_pass22") == CT_OK);
    CHECK(ct_group_delete(s, id) == CT_OK);
    CHECK(ct_group_delete(s, id) == CT_NOT_FOUND);
    ct_store_free(s);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("c api: all checks passed\n");
    return 0;
}
