/* tail: follow a changetrack store as a consumer group and print one line per change.
 *
 *   cc -Wall -Wextra -I ffi/include examples/c/tail.c -L target/debug -lchangetrack -o tail
 *   CHANGETRACK_PASSWORD=... ./tail STORE_DIR GROUP_ID USER [SECONDS]
 *
 * Reads after the group's committed position, commits every record it printed, and stops after
 * SECONDS (default 10) without a new record. */
#include <stdio.h>
#include <stdlib.h>

#include "changetrack.h"

static const char *OPS[] = {"INSERT", "UPDATE", "DELETE", "DDL", "BEGIN", "COMMIT", "HEARTBEAT"};

static int fail(const char *what, ct_result r) {
    char msg[512];
    ct_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: error %d: %s\n", what, (int)r, msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: CHANGETRACK_PASSWORD=... %s STORE_DIR GROUP_ID USER [SECONDS]\n", argv[0]);
        return 2;
    }
    const char *password = getenv("CHANGETRACK_PASSWORD");
    if (password == NULL) return fail("CHANGETRACK_PASSWORD is not set", CT_INVALID_ARGUMENT);
    unsigned idle_ms = (unsigned)(argc > 4 ? atoi(argv[4]) : 10) * 1000u;

    ct_store *store = NULL;
    ct_result r = ct_store_open_readonly(argv[1], &store);
    if (r != CT_OK) return fail("open", r);
    ct_consumer *consumer = NULL;
    r = ct_consumer_open(store, argv[2], argv[3], password, &consumer);
    if (r != CT_OK) {
        ct_store_free(store);
        return fail("consumer", r);
    }
    const ct_record *rec = NULL;
    while ((r = ct_consumer_next(consumer, idle_ms, &rec)) == CT_OK) {
        char cp[64], db[128], table[128];
        size_t len = 0;
        ct_op op = CT_OP_INSERT;
        ct_record_checkpoint(rec, cp, sizeof cp, &len);
        ct_record_database(rec, db, sizeof db, &len);
        ct_record_table(rec, table, sizeof table, &len);
        ct_record_op(rec, &op);
        printf("%s %-9s %s%s%s\n", cp, OPS[op], db, table[0] ? "." : "", table);
        if ((r = ct_consumer_commit(consumer, rec)) != CT_OK) break;
    }
    int rc = (r == CT_END) ? 0 : fail("next", r);
    ct_consumer_free(consumer);
    ct_store_free(store);
    return rc;
}
