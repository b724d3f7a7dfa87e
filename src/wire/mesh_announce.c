/*  =========================================================================
    mesh_announce - the one announcement codec of every pattern

    An announcement is a small text value a node publishes under a key
    (mesh_node_announce); peers receive it after HELLO and on every change
    (UPDATE). Every pattern writes and reads it with this codec, so there
    is one format (docs/wire-envelope.md, "Announcements"):

        @1\n                        version line: '@', format version, LF
        tag\tfield\tfield...\n      one record a line, fields split by TAB

    Inside a field, '\' escapes: "\\" is a backslash, "\t" a TAB, "\n" a
    LF; nothing else may follow a backslash. The first field of a record is
    its tag ("sub", "svc", "queue"...): a reader skips tags it does not
    know, so a later version may add records. Only the first line is the
    version line, and a record is never read as one: the pipeline once took
    a queue line starting with 'i' ("images") for its incarnation line, and
    the escaped, tagged format makes that class of confusion impossible.

    Input from the network: the parser allocates once, at most the input's
    own size plus one record slot per line of input, checks every limit
    below, skips (and counts) a malformed record without reading past it,
    and refuses a whole value without the version line or with a version
    it does not read.
    ========================================================================= */

#include "meshbus/pattern.h"
#include "mesh_util.h"
#include "mesh_announce.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _mesh_announcement_t {
    char *text;                 //  encoded (written, or the value parsed)
    size_t size;
    size_t cap;
    mesh_record_t *records;     //  parsed records
    size_t count;
    char *store;                //  their unescaped fields, NUL-terminated
    size_t malformed;           //  records skipped
};

mesh_announcement_t *
mesh_announcement_new (void)
{
    mesh_announcement_t *self = (mesh_announcement_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 256;
    self->text = (char *) malloc (self->cap);
    if (!self->text) {
        free (self);
        return NULL;
    }
    self->size = (size_t) snprintf (self->text, self->cap, "@%d\n", MESH_ANNOUNCE_VERSION);
    return self;
}

void
mesh_announcement_destroy (mesh_announcement_t **self_p)
{
    assert (self_p);
    mesh_announcement_t *self = *self_p;
    if (!self)
        return;
    free (self->text);
    free (self->records);
    free (self->store);
    free (self);
    *self_p = NULL;
}

static bool
s_reserve (mesh_announcement_t *self, size_t more)
{
    if (self->size + more <= self->cap)
        return true;
    size_t cap = self->cap * 2 > self->size + more? self->cap * 2: self->size + more;
    char *text = (char *) realloc (self->text, cap);
    if (!text)
        return false;
    self->text = text;
    self->cap = cap;
    return true;
}

int
mesh_announcement_add (mesh_announcement_t *self, const char *const *fields, size_t count)
{
    assert (self);
    assert (fields);
    if (count < 1 || count > MESH_ANNOUNCE_MAX_FIELDS || !fields [0] || !*fields [0])
        return mesh_fail (MESH_EINVAL, "a record has 1..%d fields and a tag",
                          MESH_ANNOUNCE_MAX_FIELDS);
    size_t need = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = fields [i]? strlen (fields [i]): 0;
        if (len > MESH_ANNOUNCE_MAX_FIELD)
            return mesh_fail (MESH_ETOOBIG, "an announced field is over %d bytes",
                              MESH_ANNOUNCE_MAX_FIELD);
        need += 2 * len + 1;    //  every byte escaped at worst, and its separator
    }
    if (!s_reserve (self, need))
        return mesh_fail (MESH_ESYS, "no memory for an announcement");
    char *p = self->text + self->size;
    for (size_t i = 0; i < count; i++) {
        for (const char *c = fields [i]? fields [i]: ""; *c; c++) {
            if (*c == '\\' || *c == '\t' || *c == '\n') {
                *p++ = '\\';
                *p++ = *c == '\\'? '\\': *c == '\t'? 't': 'n';
            }
            else
                *p++ = *c;
        }
        *p++ = i + 1 < count? '\t': '\n';
    }
    self->size = (size_t) (p - self->text);
    return 0;
}

const void *
mesh_announcement_data (const mesh_announcement_t *self)
{
    assert (self);
    return self->text;
}

size_t
mesh_announcement_size (const mesh_announcement_t *self)
{
    assert (self);
    return self->size;
}

//  One line (without its LF) into a record whose fields are written at
//  *out. false when the line breaks a rule: then nothing of it is kept.
static bool
s_parse_line (const char *line, size_t len, mesh_record_t *record, char **out)
{
    char *field = *out, *p = *out;
    record->fields = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || line [i] == '\t') {
            if (record->fields == MESH_ANNOUNCE_MAX_FIELDS
            ||  (size_t) (p - field) > MESH_ANNOUNCE_MAX_FIELD)
                return false;
            *p++ = 0;
            record->field [record->fields++] = field;
            field = p;
            continue;
        }
        char c = line [i];
        if (c == 0)
            return false;       //  a field is a C string: no NUL inside
        if (c == '\\') {
            if (++i == len)
                return false;
            c = line [i] == '\\'? '\\': line [i] == 't'? '\t': line [i] == 'n'? '\n': 0;
            if (!c)
                return false;   //  an escape we do not know
        }
        *p++ = c;
    }
    if (!*record->field [0])
        return false;           //  no tag
    *out = p;
    return true;
}

mesh_announcement_t *
mesh_announcement_parse (const void *data, size_t size)
{
    const char *text = (const char *) data;
    if (!text || size < 3 || text [0] != '@')
        return NULL;
    const char *nl = (const char *) memchr (text, '\n', size);
    char version [8];
    size_t vlen = nl? (size_t) (nl - text) - 1: 0;
    if (!nl || vlen == 0 || vlen >= sizeof version)
        return NULL;
    memcpy (version, text + 1, vlen);
    version [vlen] = 0;
    char *end;
    long v = strtol (version, &end, 10);
    if (*end || v != MESH_ANNOUNCE_VERSION)
        return NULL;            //  not a format this reader reads
    mesh_announcement_t *self = (mesh_announcement_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    //  bounds from the bytes themselves: a record per LF, fields no
    //  longer than the escaped text they came from
    size_t lines = 0;
    for (const char *at = nl + 1; at < text + size; at++)
        lines += *at == '\n';
    if (lines > MESH_ANNOUNCE_MAX_RECORDS)
        lines = MESH_ANNOUNCE_MAX_RECORDS;
    self->text = (char *) malloc (size);
    self->store = (char *) malloc (size);
    self->records = (mesh_record_t *) calloc (lines? lines: 1, sizeof (mesh_record_t));
    if (!self->text || !self->store || !self->records) {
        mesh_announcement_destroy (&self);
        return NULL;
    }
    memcpy (self->text, text, size);
    self->size = self->cap = size;
    char *out = self->store;
    const char *at = nl + 1, *stop = text + size;
    while (at < stop) {
        const char *eol = (const char *) memchr (at, '\n', (size_t) (stop - at));
        if (!eol) {
            self->malformed++;  //  a last line without its LF
            break;
        }
        if (self->count == lines
        ||  !s_parse_line (at, (size_t) (eol - at), &self->records [self->count], &out))
            self->malformed++;
        else
            self->count++;
        at = eol + 1;
    }
    return self;
}

size_t
mesh_announcement_count (const mesh_announcement_t *self)
{
    assert (self);
    return self->count;
}

const mesh_record_t *
mesh_announcement_record (const mesh_announcement_t *self, size_t index)
{
    assert (self);
    return index < self->count? &self->records [index]: NULL;
}

size_t
mesh_announcement_malformed (const mesh_announcement_t *self)
{
    assert (self);
    return self->malformed;
}

bool
mesh_announcement_same (const mesh_announcement_t *self, const void *data, size_t size)
{
    return self && self->size == size && memcmp (self->text, data, size) == 0;
}

//  ---------------------------------------------------------------------
//  Deltas: what changed between two values of one announcement, as one
//  splice (docs/protocol.md, "Announcement deltas"). A pattern's change is
//  records added or removed in one place (a subscription appended, a
//  service withdrawn), so the bytes that differ are one run: the common
//  prefix and suffix are cut back to whole lines, and what lies between
//  is the records removed (cut bytes at at) and the records added (the
//  delta's body). Finding it is two memcmp-speed scans; sending it costs
//  the change, not the list.


void
mesh_announce_diff (const char *old, size_t old_size, const char *now, size_t now_size,
                    size_t *at, size_t *cut, size_t *added)
{
    size_t min = old_size < now_size? old_size: now_size;
    size_t p = 0;
    //  blocks at memcmp's speed first: a list of 10 000 records is
    //  compared on every change
    while (p + 256 <= min && memcmp (old + p, now + p, 256) == 0)
        p += 256;
    while (p < min && old [p] == now [p])
        p++;
    while (p > 0 && old [p - 1] != '\n')
        p--;                    //  back to the start of a record
    size_t s = 0;
    while (s + 256 <= min - p
    &&     memcmp (old + old_size - s - 256, now + now_size - s - 256, 256) == 0)
        s += 256;
    while (s < min - p && old [old_size - 1 - s] == now [now_size - 1 - s])
        s++;
    //  the suffix starts a record in both, or the splice would split one
    while (s > 0 && !((old_size - s == p || old [old_size - s - 1] == '\n')
                   && (now_size - s == p || now [now_size - s - 1] == '\n')))
        s--;
    *at = p;
    *cut = old_size - s - p;
    *added = now_size - s - p;
}

void
mesh_announce_delta_head (uint8_t head [MESH_ANNOUNCE_DELTA_HEAD], size_t at, size_t cut)
{
    for (int i = 0; i < 4; i++) {
        head [i] = (uint8_t) (at >> (8 * i));
        head [4 + i] = (uint8_t) (cut >> (8 * i));
    }
}

bool
mesh_announce_delta_read (const void *delta, size_t delta_size, size_t *at, size_t *cut)
{
    if (delta_size < MESH_ANNOUNCE_DELTA_HEAD)
        return false;
    const uint8_t *d = (const uint8_t *) delta;
    *at = *cut = 0;
    for (int i = 0; i < 4; i++) {
        *at |= (size_t) d [i] << (8 * i);
        *cut |= (size_t) d [4 + i] << (8 * i);
    }
    return true;
}

void *
mesh_announce_apply (const void *old, size_t old_size, const void *delta, size_t delta_size,
                     size_t max_size, size_t *size)
{
    if (delta_size < MESH_ANNOUNCE_DELTA_HEAD)
        return NULL;
    const uint8_t *d = (const uint8_t *) delta;
    size_t at = 0, cut = 0;
    for (int i = 0; i < 4; i++) {
        at |= (size_t) d [i] << (8 * i);
        cut |= (size_t) d [4 + i] << (8 * i);
    }
    size_t added = delta_size - MESH_ANNOUNCE_DELTA_HEAD;
    //  every bound from bytes we hold: the value we had and the delta
    if (at > old_size || cut > old_size - at || old_size - cut + added > max_size)
        return NULL;
    *size = old_size - cut + added;
    char *out = (char *) malloc (*size + 1);
    if (!out)
        return NULL;
    memcpy (out, old, at);
    memcpy (out + at, d + MESH_ANNOUNCE_DELTA_HEAD, added);
    memcpy (out + at + added, (const char *) old + at + cut, old_size - at - cut);
    out [*size] = 0;
    return out;
}
