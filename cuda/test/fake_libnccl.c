/* A stand-in libnccl.so.2 for the tests (no GPU, no NCCL): the entry points cuda/nccl_api.h
 * loads, with ranks in separate processes exchanging through files in a folder that rank 0's
 * unique id names. A group's sends are written when the group ends, then its receives are read,
 * each checked to be exactly the size the receiver expects. FAKE_NCCL_LOG=FILE appends one line
 * per group: "rank R group G: send P:BYTES ... recv P:BYTES ..."; FAKE_NCCL_FAIL=send makes
 * ncclSend fail, FAKE_NCCL_FAIL=init ncclCommInitRank; the folders are made in $FAKE_NCCL_DIR (default
 * /tmp). Never used outside the tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char internal[128];
} ncclUniqueId;

typedef struct {
  char dir[128];
  int rank, nranks;
  long groups;
} comm_t;

typedef struct {
  int send;
  const void* sbuf;
  void* rbuf;
  size_t n;
  int peer;
  comm_t* comm;
} op_t;

enum { SUCCESS = 0, SYSTEM_ERROR = 2, INTERNAL_ERROR = 3, INVALID_USAGE = 5, MAX_OPS = 4096 };
static op_t ops[MAX_OPS];
static int nops, depth;

static int failing(const char* what) {
  const char* f = getenv("FAKE_NCCL_FAIL");
  return f && strcmp(f, what) == 0;
}

int ncclGetVersion(int* v) {
  *v = 21805;
  return SUCCESS;
}

const char* ncclGetErrorString(int r) {
  switch (r) {
    case SYSTEM_ERROR: return "stand-in: a file operation failed";
    case INTERNAL_ERROR: return "stand-in: failure asked for by FAKE_NCCL_FAIL";
    case INVALID_USAGE: return "stand-in: a receive of another size than was sent";
    default: return "stand-in: error";
  }
}

int ncclGetUniqueId(ncclUniqueId* id) {
  memset(id, 0, sizeof *id);
  const char* parent = getenv("FAKE_NCCL_DIR") ? getenv("FAKE_NCCL_DIR") : "/tmp";
  char t[128];
  if (snprintf(t, sizeof t, "%s/fake-nccl-XXXXXX", parent) >= (int)sizeof t || !mkdtemp(t)) return SYSTEM_ERROR;
  strcpy(id->internal, t);
  return SUCCESS;
}

int ncclCommInitRank(comm_t** out, int nranks, ncclUniqueId id, int rank) {
  if (failing("init")) return INTERNAL_ERROR;
  comm_t* c = calloc(1, sizeof *c);
  if (!c) return SYSTEM_ERROR;
  memcpy(c->dir, id.internal, sizeof c->dir - 1);
  c->rank = rank;
  c->nranks = nranks;
  *out = c;
  return SUCCESS;
}

int ncclCommDestroy(comm_t* c) {
  if (c->rank == 0) rmdir(c->dir); /* fails harmlessly while another rank's files remain */
  free(c);
  return SUCCESS;
}

int ncclGroupStart(void) {
  depth++;
  return SUCCESS;
}

static void path_of(char* p, size_t n, const comm_t* c, int from, int to) {
  snprintf(p, n, "%s/g%ld.%d.%d", c->dir, c->groups, from, to);
}

static int run_ops(void) {
  int rc = SUCCESS;
  char p[256], tmp[300];
  FILE* log = getenv("FAKE_NCCL_LOG") ? fopen(getenv("FAKE_NCCL_LOG"), "a") : NULL;
  if (log && nops) fprintf(log, "rank %d group %ld:", ops[0].comm->rank, ops[0].comm->groups);
  for (int i = 0; i < nops && rc == SUCCESS; i++) {
    const op_t* o = &ops[i];
    if (log) fprintf(log, " %s %d:%zu", o->send ? "send" : "recv", o->peer, o->n);
    if (!o->send) continue;
    path_of(p, sizeof p, o->comm, o->comm->rank, o->peer);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE* f = fopen(tmp, "wb");
    if (!f || fwrite(o->sbuf, 1, o->n, f) != o->n) rc = SYSTEM_ERROR;
    if (f) fclose(f);
    if (rc == SUCCESS && rename(tmp, p) != 0) rc = SYSTEM_ERROR;
  }
  for (int i = 0; i < nops && rc == SUCCESS; i++) {
    const op_t* o = &ops[i];
    if (o->send) continue;
    path_of(p, sizeof p, o->comm, o->peer, o->comm->rank);
    struct stat st;
    int waited = 0;
    while (stat(p, &st) != 0 && waited < 60000) {
      usleep(1000);
      waited++;
    }
    if (waited >= 60000) {
      rc = SYSTEM_ERROR;
      break;
    }
    if ((size_t)st.st_size != o->n) {
      rc = INVALID_USAGE;
      break;
    }
    FILE* f = fopen(p, "rb");
    if (!f || fread(o->rbuf, 1, o->n, f) != o->n) rc = SYSTEM_ERROR;
    if (f) fclose(f);
    unlink(p);
  }
  if (log && nops) fprintf(log, "\n");
  if (log) fclose(log);
  /* Every communicator in the group moves to its next group. */
  for (int i = 0; i < nops; i++)
    if (i == 0 || ops[i].comm != ops[0].comm) ops[i].comm->groups++;
  nops = 0;
  return rc;
}

int ncclGroupEnd(void) {
  if (depth == 0) return INVALID_USAGE;
  if (--depth > 0) return SUCCESS;
  return run_ops();
}

static int add(int send, const void* sbuf, void* rbuf, size_t n, int peer, comm_t* c) {
  if (nops == MAX_OPS || peer < 0 || peer >= c->nranks) return INVALID_USAGE;
  op_t o = {send, sbuf, rbuf, n, peer, c};
  ops[nops++] = o;
  return depth ? SUCCESS : run_ops();
}

int ncclSend(const void* buf, size_t count, int type, int peer, comm_t* c, void* stream) {
  (void)stream;
  if (failing("send")) {
    nops = 0; /* the group is abandoned */
    return INTERNAL_ERROR;
  }
  if (type != 1) return INVALID_USAGE; /* ncclUint8: counts are bytes */
  return add(1, buf, NULL, count, peer, c);
}

int ncclRecv(void* buf, size_t count, int type, int peer, comm_t* c, void* stream) {
  (void)stream;
  if (type != 1) return INVALID_USAGE;
  return add(0, NULL, buf, count, peer, c);
}
