/*  =========================================================================
    mesh_pubsub_replay - loss and durability in publish-subscribe

    Publisher side: what the retained log sends to a subscriber that
    shows up (durable catch-up, retained since a time, last values), the
    answer to a REPLAY_REQ, the durable positions DACK moves, and the POS
    told to each subscriber. Subscriber side: GAP reports and replay
    requests, REPLAY_END settling them as REPLAYED or GAP_LOST, and the
    DACKs sent for durable subscriptions. Nothing here runs for each
    message published or received: the stream sequence is advanced, and
    gaps found, in mesh_pubsub_route.c. The design is described at the top
    of mesh_pubsub.c.
    ========================================================================= */

#include "mesh_pubsub_int.h"

//  ---------------------------------------------------------------------
//  Publisher side

//  Send one retained record to a remote (replays, catch-up, last value).
static int
s_send_retained (mesh_pubsub_t *self, remote_t *remote, const mesh_retained_t *rec,
                 uint32_t flags)
{
    mesh_head_t head = {
        .kind = KIND_PUB, .flags = flags, .seq = 0, .id = rec->id,
        .subject = rec->subject, .ctype = rec->ctype [0]? rec->ctype: NULL,
        .headers = rec->headers, .header_count = rec->header_count
    };
    int rc = mesh_node_send (self->node, remote->peer, &head, rec->body, rec->size);
    if (rc)
        mesh_pubsub_count (self, remote->peer, "pubsub.replay.dropped", 1);
    return rc;
}

//  A durable or last-value subscription appeared: send what it should get.
void
mesh_pubsub_catch_up (mesh_pubsub_t *self, remote_t *remote, const rsub_t *rsub)
{
    if (rsub->durable [0]) {
        uint64_t *pos = (uint64_t *) zhashx_lookup (self->durable_pos, rsub->durable);
        if (!pos && self->meta) {
            //  a position from before a restart
            char key [MESH_MAX_SUBJECT + 16];
            snprintf (key, sizeof key, "durable.%s", rsub->durable);
            char *value = mesh_store_meta_get (self->meta, key);
            if (value) {
                pos = (uint64_t *) malloc (sizeof (uint64_t));
                *pos = strtoull (value, NULL, 10);
                zhashx_insert (self->durable_pos, rsub->durable, pos);
                free (value);
            }
        }
        if (!pos) {
            //  first time we see it: it starts from now
            pos = (uint64_t *) malloc (sizeof (uint64_t));
            *pos = self->pub_seq;
            zhashx_insert (self->durable_pos, rsub->durable, pos);
            return;
        }
        uint64_t from = *pos + 1, sent = 0, first = mesh_retain_first (self->retain);
        if (first && from < first) {
            mesh_pubsub_count (self, remote->peer, "pubsub.durable.expired", first - from);
            from = first;
        }
        for (uint64_t id = from; id && id <= self->pub_seq; id++) {
            mesh_retained_t rec;
            if (mesh_retain_get (self->retain, id, &rec)
            &&  mesh_subject_match (rsub->pattern, rec.subject)
            &&  s_send_retained (self, remote, &rec, FLAG_REPLAY) == 0)
                sent++;
        }
        mesh_pubsub_count (self, remote->peer, "pubsub.durable.caught-up", sent);
    }
    if (rsub->since && !rsub->durable [0]) {
        //  joining with a start time: what we kept from then on, in order
        uint64_t sent = 0, first = mesh_retain_first (self->retain);
        for (uint64_t id = first; first && id <= self->pub_seq; id++) {
            mesh_retained_t rec;
            if (mesh_retain_get (self->retain, id, &rec) && rec.time_ms >= rsub->since
            &&  mesh_subject_match (rsub->pattern, rec.subject)
            &&  s_send_retained (self, remote, &rec, FLAG_REPLAY) == 0)
                sent++;
        }
        mesh_pubsub_count (self, remote->peer, "pubsub.since.sent", sent);
    }
    if (rsub->last_value) {
        for (uint64_t *id = (uint64_t *) zhashx_first (self->last_values); id;
             id = (uint64_t *) zhashx_next (self->last_values)) {
            mesh_retained_t rec;
            if (mesh_subject_match (rsub->pattern, (const char *) zhashx_cursor (self->last_values))
            &&  mesh_retain_get (self->retain, *id, &rec))
                s_send_retained (self, remote, &rec, FLAG_REPLAY | FLAG_LAST_VALUE);
        }
    }
}

//  The answer that closes a replay. The subscriber settles its gaps only
//  when every request is answered, so this must not be lost to the link's
//  high-water mark (which the replay itself just filled): wait for room.
static void
s_send_replay_end (mesh_pubsub_t *self, const char *peer, uint64_t from, uint64_t sent)
{
    mesh_head_t head = { .kind = KIND_REPLAY_END, .id = from, .seq = sent };
    if (mesh_node_send (self->node, peer, &head, NULL, 0) && mesh_errno () == MESH_EAGAIN
    &&  mesh_node_wait_writable (self->node, peer, self->send_timeout) == 0)
        mesh_node_send (self->node, peer, &head, NULL, 0);
}

//  Replay request from a subscriber: resend what we kept of [from, to]
//  that its subscriptions match, then say how many. A replay answers a
//  request, so it waits for the link (up to the send timeout per message)
//  instead of dropping: the lock is released while waiting, and the
//  record fetched again after, since the log may have moved meanwhile.
void
mesh_pubsub_on_replay_req (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    uint64_t from = mesh_msg_id (msg), to = mesh_msg_seq (msg), sent = 0;
    pthread_mutex_lock (&self->lock);
    mesh_pubsub_rebuild (self);
    remote_t *remote = (remote_t *) zhashx_lookup (self->remotes, peer);
    if (!remote || !from || to < from || to > self->pub_seq) {
        mesh_pubsub_count (self, peer, "pubsub.replay.refused", 1);
        pthread_mutex_unlock (&self->lock);
        //  answer anyway, so the subscriber reports the gap as lost
        s_send_replay_end (self, peer, from, 0);
        return;
    }
    uint64_t first = mesh_retain_first (self->retain);
    uint64_t id = from < first? first: from;
    while (first && id <= to) {
        mesh_retained_t rec;
        remote = (remote_t *) zhashx_lookup (self->remotes, peer);
        if (!remote)
            break;
        if (!mesh_retain_get (self->retain, id, &rec)
        ||  !mesh_pubsub_remote_matches (remote, rec.subject, NULL)) {
            id++;
            continue;
        }
        mesh_head_t head = {
            .kind = KIND_PUB, .flags = FLAG_REPLAY, .id = rec.id, .subject = rec.subject,
            .ctype = rec.ctype [0]? rec.ctype: NULL,
            .headers = rec.headers, .header_count = rec.header_count
        };
        if (mesh_node_send (node, peer, &head, rec.body, rec.size) == 0) {
            sent++;
            id++;
            continue;
        }
        if (mesh_errno () != MESH_EAGAIN)
            break;
        pthread_mutex_unlock (&self->lock);
        int rc = mesh_node_wait_writable (node, peer, self->send_timeout);
        pthread_mutex_lock (&self->lock);
        if (rc)
            break;
    }
    if (id <= to && first)
        mesh_pubsub_count (self, peer, "pubsub.replay.dropped", 1);
    pthread_mutex_unlock (&self->lock);
    s_send_replay_end (self, peer, from, sent);
    mesh_pubsub_count (self, peer, "pubsub.replay.sent", sent);
}

void
mesh_pubsub_on_dack (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *name = mesh_msg_subject (msg);
    if (!*name)
        return;
    pthread_mutex_lock (&self->lock);
    uint64_t *pos = (uint64_t *) zhashx_lookup (self->durable_pos, name);
    if (!pos && zhashx_size (self->durable_pos) < MESH_PUBSUB_MAX_SUBS) {
        pos = (uint64_t *) calloc (1, sizeof (uint64_t));
        zhashx_insert (self->durable_pos, name, pos);
    }
    if (pos && mesh_msg_id (msg) > *pos && mesh_msg_id (msg) <= self->pub_seq) {
        *pos = mesh_msg_id (msg);
        if (self->meta) {
            char key [MESH_MAX_SUBJECT + 16], value [32];
            snprintf (key, sizeof key, "durable.%s", name);
            snprintf (value, sizeof value, "%llu", (unsigned long long) *pos);
            mesh_store_meta_set (self->meta, key, value);
        }
    }
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Subscriber side

static void
s_post (mesh_pubsub_t *self, int type, const char *name, const char *peer, uint64_t count)
{
    char detail [64];
    snprintf (detail, sizeof detail, "%llu", (unsigned long long) count);
    mesh_node_post_event (self->node, type, name, peer, detail, count);
}

static bool
s_wants_replay (mesh_pubsub_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool wants = false;
    for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub && !wants;
         sub = (sub_t *) zlistx_next (self->subs))
        wants = !sub->opts.no_replay;
    pthread_mutex_unlock (&self->lock);
    return wants;
}

void
mesh_pubsub_report_gap (mesh_pubsub_t *self, mesh_node_t *node, const char *peer,
                        uint64_t gap, uint64_t ask_from, uint64_t ask_to)
{
    if (!gap)
        return;
    mesh_pubsub_count (self, peer, "pubsub.gaps", gap);
    s_post (self, MESH_EVENT_GAP, "GAP", peer, gap);
    bool asked = false;
    if (ask_from && s_wants_replay (self)) {
        mesh_head_t req = { .kind = KIND_REPLAY_REQ, .id = ask_from, .seq = ask_to };
        asked = mesh_node_send (node, peer, &req, NULL, 0) == 0;
    }
    if (asked)
        return;                 //  REPLAY_END will tell REPLAYED / GAP_LOST
    if (ask_from) {
        //  s_advance counted these as awaiting a replay that was not asked
        pthread_mutex_lock (&self->lock);
        stream_t *stream = (stream_t *) zhashx_lookup (self->streams, peer);
        if (stream) {
            stream->gap_pending -= gap < stream->gap_pending? gap: stream->gap_pending;
            stream->requests -= stream->requests > 0;
        }
        pthread_mutex_unlock (&self->lock);
    }
    //  No replay is coming for these (none wanted, the request could not be
    //  sent, or we cannot tell which ids they were): they are lost for
    //  good, so say it now rather than never.
    mesh_pubsub_count (self, peer, "pubsub.gaps.lost", gap);
    s_post (self, MESH_EVENT_GAP_LOST, "GAP_LOST", peer, gap);
}

void
mesh_pubsub_on_replay_end (mesh_node_t *node, const mesh_msg_t *msg, void *arg)
{
    (void) node;
    mesh_pubsub_t *self = (mesh_pubsub_t *) arg;
    const char *peer = mesh_msg_sender (msg);
    pthread_mutex_lock (&self->lock);
    stream_t *stream = (stream_t *) zhashx_lookup (self->streams, peer);
    uint64_t pending = 0, got = 0;
    if (stream && stream->requests)
        stream->requests--;
    if (stream && stream->requests == 0 && stream->gap_pending) {
        pending = stream->gap_pending;
        got = stream->replayed < pending? stream->replayed: pending;
        stream->gap_pending = 0;
        stream->replayed = 0;
    }
    pthread_mutex_unlock (&self->lock);
    if (got) {
        mesh_pubsub_count (self, peer, "pubsub.gaps.filled", got);
        s_post (self, MESH_EVENT_REPLAYED, "REPLAYED", peer, got);
    }
    if (pending > got) {
        mesh_pubsub_count (self, peer, "pubsub.gaps.lost", pending - got);
        s_post (self, MESH_EVENT_GAP_LOST, "GAP_LOST", peer, pending - got);
    }
}

//  Tell each alive subscriber where its stream stands, if it moved since.
//  Lock held.
void
mesh_pubsub_report_positions (mesh_pubsub_t *self)
{
    for (remote_t *r = (remote_t *) zhashx_first (self->remotes); r;
         r = (remote_t *) zhashx_next (self->remotes)) {
        if (!r->alive || r->seq == r->reported)
            continue;
        mesh_head_t head = { .kind = KIND_POS, .seq = r->seq, .id = self->pub_seq };
        if (mesh_node_send (self->node, r->peer, &head, NULL, 0) == 0)
            r->reported = r->seq;
    }
}

//  Acknowledge to each publisher the last id we got from it, for every
//  durable subscription, if it moved since the last acknowledgement.
typedef struct {
    char peer [33];
    uint64_t id;
    char durable [MESH_MAX_SUBJECT + 1];
} dack_t;

void
mesh_pubsub_send_dacks (mesh_pubsub_t *self)
{
    zlistx_t *acks = zlistx_new ();
    zlistx_set_destructor (acks, mesh_pubsub_free);
    pthread_mutex_lock (&self->lock);
    for (stream_t *s = (stream_t *) zhashx_first (self->streams); s;
         s = (stream_t *) zhashx_next (self->streams)) {
        if (s->last_id <= s->acked_id)
            continue;
        s->acked_id = s->last_id;
        for (sub_t *sub = (sub_t *) zlistx_first (self->subs); sub;
             sub = (sub_t *) zlistx_next (self->subs))
            if (sub->durable) {
                dack_t *ack = (dack_t *) zmalloc (sizeof (dack_t));
                snprintf (ack->peer, sizeof ack->peer, "%s", (const char *) zhashx_cursor (self->streams));
                snprintf (ack->durable, sizeof ack->durable, "%s", sub->durable);
                ack->id = s->last_id;
                zlistx_add_end (acks, ack);
            }
    }
    pthread_mutex_unlock (&self->lock);
    for (dack_t *ack = (dack_t *) zlistx_first (acks); ack; ack = (dack_t *) zlistx_next (acks)) {
        mesh_head_t head = { .kind = KIND_DACK, .id = ack->id, .subject = ack->durable };
        mesh_node_send (self->node, ack->peer, &head, NULL, 0);
    }
    zlistx_destroy (&acks);
}
