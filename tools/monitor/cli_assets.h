/*  cli_assets - the dashboard's files, compiled into the tool (tools/
    SConscript makes cli_assets.c from tools/monitor/ (html, js, css)|js|css): the
    machines that run a monitor may have no internet, so no CDN, and no
    files to install beside the binary.  */
#ifndef CLI_ASSETS_H_INCLUDED
#define CLI_ASSETS_H_INCLUDED
#include <stddef.h>

typedef struct {
    const char *path;               //  as requested, e.g. "/app.js"
    const char *type;               //  Content-Type
    const unsigned char *data;
    size_t size;
} cli_asset_t;

//  ends with an entry whose path is NULL
extern const cli_asset_t cli_assets [];

#endif
