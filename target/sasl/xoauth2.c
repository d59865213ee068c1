/*
 * relaykit's XOAUTH2 client mechanism for Cyrus SASL (libsasl2), for Postfix's SMTP
 * client. It sends, as its initial response (RFC 4954, Google's and Microsoft's XOAUTH2):
 *
 *     user=<SASL user>^Aauth=Bearer <SASL password>^A^A
 *
 * so the "password" Postfix looks up in smtp_sasl_password_maps must be a current OAuth2
 * access token: relaykit writes those into sasl_passwd_oauth2 and keeps them fresh
 * (target/relaykit/run/oauth2.py); only relaykit's OAuth2 client transports allow this
 * mechanism (smtp_sasl_mechanism_filter = xoauth2), every other one filters it out.
 *
 * Why our own: Debian 12's libsasl2-modules-kdexoauth2 asks for the token through a
 * SASL_CB_PASS callback of the wrong type (sasl_getsimple_t instead of sasl_getsecret_t);
 * Postfix supplies the standard one, so that plugin fails with "invalid parameter
 * supplied" in Postfix. This one takes the password as libsasl2's own PLAIN does.
 *
 * Built by target/install.sh (gcc, libsasl2-dev) into libsasl2's plugin directory as
 * librelaykit_xoauth2.so. The token is never logged and is wiped when the session ends.
 */
#include <stdio.h>
#include <string.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>

typedef struct {
    char *out;
    unsigned out_len;
    int sent;
} context_t;

static int xoauth2_new(void *glob_context, sasl_client_params_t *params, void **conn_context)
{
    context_t *context = params->utils->malloc(sizeof(context_t));

    (void) glob_context;
    if (context == NULL)
        return SASL_NOMEM;
    memset(context, 0, sizeof(context_t));
    *conn_context = context;
    return SASL_OK;
}

static int xoauth2_step(void *conn_context, sasl_client_params_t *params,
                        const char *serverin, unsigned serverinlen,
                        sasl_interact_t **prompt_need,
                        const char **clientout, unsigned *clientoutlen,
                        sasl_out_params_t *oparams)
{
    context_t *context = conn_context;
    const sasl_utils_t *utils = params->utils;
    sasl_getsimple_t *get_user = NULL;
    sasl_getsecret_t *get_token = NULL;
    void *user_context = NULL, *token_context = NULL;
    const char *user = NULL;
    sasl_secret_t *token = NULL;
    unsigned user_len, length;
    int result;

    (void) prompt_need;
    *clientout = NULL;
    *clientoutlen = 0;
    if (context->sent) {
        /* The server answered our response with a challenge: an error report (JSON,
         * as Gmail sends before its 535). Say so; the client aborts the exchange. */
        utils->seterror(utils->conn, 0, "the server rejected the XOAUTH2 token: %.*s",
                        (int) (serverinlen > 200 ? 200 : serverinlen), serverin ? serverin : "");
        return SASL_BADAUTH;
    }
    if (params->props.min_ssf > params->external_ssf) {
        utils->seterror(utils->conn, 0, "XOAUTH2 offers no security layer");
        return SASL_TOOWEAK;
    }
    if (utils->getcallback(utils->conn, SASL_CB_AUTHNAME, (sasl_callback_ft *) &get_user, &user_context) != SASL_OK
        || get_user == NULL || get_user(user_context, SASL_CB_AUTHNAME, &user, &user_len) != SASL_OK
        || user == NULL || *user == 0) {
        utils->seterror(utils->conn, 0, "XOAUTH2: no user name");
        return SASL_BADPARAM;
    }
    if (utils->getcallback(utils->conn, SASL_CB_PASS, (sasl_callback_ft *) &get_token, &token_context) != SASL_OK
        || get_token == NULL || get_token(utils->conn, token_context, SASL_CB_PASS, &token) != SASL_OK
        || token == NULL || token->len == 0) {
        utils->seterror(utils->conn, 0, "XOAUTH2: no access token");
        return SASL_BADPARAM;
    }
    result = params->canon_user(utils->conn, user, 0, SASL_CU_AUTHID | SASL_CU_AUTHZID, oparams);
    if (result != SASL_OK)
        return result;

    user_len = strlen(user);
    length = 5 + user_len + 1 + 12 + token->len + 2;  /* user=%s ^A auth=Bearer %s ^A^A */
    context->out = utils->malloc(length + 1);
    if (context->out == NULL)
        return SASL_NOMEM;
    context->out_len = length;
    snprintf(context->out, length + 1, "user=%s\001auth=Bearer %.*s\001\001", user, (int) token->len,
             (const char *) token->data);
    context->sent = 1;
    *clientout = context->out;
    *clientoutlen = length;

    oparams->doneflag = 1;
    oparams->mech_ssf = 0;
    oparams->maxoutbuf = 0;
    oparams->encode_context = NULL;
    oparams->encode = NULL;
    oparams->decode_context = NULL;
    oparams->decode = NULL;
    oparams->param_version = 0;
    return SASL_OK;
}

static void xoauth2_dispose(void *conn_context, const sasl_utils_t *utils)
{
    context_t *context = conn_context;

    if (context == NULL)
        return;
    if (context->out) {
        memset(context->out, 0, context->out_len);  /* the token */
        utils->free(context->out);
    }
    utils->free(context);
}

static sasl_client_plug_t xoauth2_plugins[] = {
    {
        "XOAUTH2",                                        /* mech_name */
        0,                                                /* max_ssf */
        SASL_SEC_NOANONYMOUS | SASL_SEC_PASS_CREDENTIALS, /* security_flags: like PLAIN */
        SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_ALLOWS_PROXY,
        NULL, NULL,                                       /* required_prompts, glob_context */
        &xoauth2_new, &xoauth2_step, &xoauth2_dispose,
        NULL, NULL, NULL, NULL                            /* mech_free, idle, spares */
    }
};

int sasl_client_plug_init(const sasl_utils_t *utils, int maxversion, int *out_version,
                          sasl_client_plug_t **pluglist, int *plugcount)
{
    if (maxversion < SASL_CLIENT_PLUG_VERSION) {
        utils->seterror(utils->conn, 0, "XOAUTH2: SASL plugin version mismatch");
        return SASL_BADVERS;
    }
    *out_version = SASL_CLIENT_PLUG_VERSION;
    *pluglist = xoauth2_plugins;
    *plugcount = 1;
    return SASL_OK;
}
