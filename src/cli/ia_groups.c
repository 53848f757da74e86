/*
 * ia_groups.c -- chat-client's interactive mode, its groups as shown: the
 * names of this user's groups (from the LIST asked at connection, and from
 * events), "NAME(G)" labels for the prompt and the lines, a line per group
 * event ("[HH:MM] 1 added 7, 8 to friends(3)"), the answers to /groups and
 * the refusals of group requests. interactive_int.h has the struct.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chat.h"
#include "cli/interactive_int.h"

static ia_group *group_find(ia_job *j, uint32_t id) {
    for (unsigned i = 0; i < j->n_groups; i++)
        if (j->groups[i].id == id) return &j->groups[i];
    return NULL;
}

/* Remember (or forget: name NULL) a group's name. */
static void group_name(ia_job *j, uint32_t id, const char *name, size_t n) {
    ia_group *g = group_find(j, id);
    if (!name) {
        if (g) *g = j->groups[--j->n_groups];
        return;
    }
    if (!g && j->n_groups < IA_GROUPS) g = &j->groups[j->n_groups++];
    if (g) {
        g->id = id;
        ia_sanitize(g->name, sizeof g->name, name, n, 0);
    }
}

/* "NAME(G)", or "group G" when the name is not known. */
const char *ia_group_label(ia_job *j, uint32_t id, char *out, size_t cap) {
    const ia_group *g = group_find(j, id);
    if (g && g->name[0]) snprintf(out, cap, "%s(%" PRIu32 ")", g->name, id);
    else snprintf(out, cap, "group %" PRIu32, id);
    return out;
}

/* "1, 2 and 3 more" into out: the first users of a list. */
static void user_list(char *out, size_t cap, const uint32_t *u, size_t n) {
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        int w = i == 6 && n > 7 ? snprintf(out + at, cap - at, " and %zu more", n - i)
                                : snprintf(out + at, cap - at, "%s%" PRIu32, i ? ", " : "", u[i]);
        if (w < 0) return;
        at += (size_t)w;
        if (i == 6 && n > 7) return;
    }
}

/* A change in a group, as one line: "[HH:MM] 1 added 7, 8 to friends(3)". */
static void show_event(ia_job *j, const chat_group_event *e) {
    char t[6], by[16], users[96], label[96];
    ia_hhmm(t);
    if (e->by == j->cc.id) snprintf(by, sizeof by, "me");
    else snprintf(by, sizeof by, "%" PRIu32, e->by);
    user_list(users, sizeof users, e->users, e->n_users);
    if (e->what != CHAT_GROUP_LEFT || e->name_len) group_name(j, e->group, e->name, e->name_len);
    ia_group_label(j, e->group, label, sizeof label);
    switch (e->what) {
    case CHAT_GROUP_CREATED:
        ia_show(stdout, "[%s] %s created %s%s%s", t, by, label, e->n_users ? " with " : "", users);
        break;
    case CHAT_GROUP_RENAMED: {
        const ia_group *g = group_find(j, e->group);
        ia_show(stdout, "[%s] %s renamed group %" PRIu32 " to %s", t, by, e->group,
                g ? g->name : "?");
        break;
    }
    case CHAT_GROUP_ADDED: ia_show(stdout, "[%s] %s added %s to %s", t, by, users, label); break;
    case CHAT_GROUP_REMOVED:
        ia_show(stdout, "[%s] %s removed %s from %s", t, by, users, label);
        break;
    default: ia_show(stdout, "[%s] %s left %s", t, by, label); break;
    }
    /* This user is out of it: forget the name (the group may be gone). */
    for (size_t i = 0; i < e->n_users; i++)
        if ((e->what == CHAT_GROUP_REMOVED || e->what == CHAT_GROUP_LEFT) &&
            e->users[i] == j->cc.id)
            group_name(j, e->group, NULL, 0);
    ia_set_prompt(j);
}

/* Answers to this session's group requests, and group events. */
void ia_on_group(chat_client *c, const chat_group_event *e, void *ud) {
    (void)c;
    ia_job *j = ud;
    if (e->op == CHAT_GROUP_EVENT) {
        show_event(j, e);
        return;
    }
    int quiet = e->op == CHAT_GROUP_LIST && e->req == j->quiet_list;
    if (e->err == CHAT_EREFUSED && !quiet)
        ia_show(stderr, "chat-client: %.*s", e->reason_len > 200 ? 200 : (int)e->reason_len,
                e->reason);
    if (e->err) return; /* (lost with the connection: that is reported) */
    if (e->op != CHAT_GROUP_LIST) return;
    j->n_groups = 0;
    for (size_t i = 0; i < e->n_groups; i++)
        group_name(j, e->groups[i].id, e->groups[i].name, e->groups[i].name_len);
    ia_set_prompt(j);
    if (quiet) return;
    if (!e->n_groups) ia_show(stdout, "you are in no group");
    for (size_t i = 0; i < e->n_groups; i++) {
        char label[96];
        ia_show(stdout, "%s: %" PRIu32 " members%s",
                ia_group_label(j, e->groups[i].id, label, sizeof label), e->groups[i].members,
                e->groups[i].admin ? ", you are an admin" : "");
    }
}
