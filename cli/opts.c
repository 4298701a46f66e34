/* opts.c - the one command-line option parser every subcommand uses.
 *
 * Options are "--name VALUE" or "--name=VALUE" (value options) and "--name" (flags);
 * anything else starting with '-' (but "-" alone) is an unknown option, the rest are
 * positional arguments. A value option takes the next argument whatever it looks like
 * (`--set -x` sets "-x"), so a value may start with '-'. */
#include "commands.h"

#include <string.h>

/* the value of option name at argv[*i] (advancing *i past a separate value); NULL when
 * argv[*i] is not name, and then *missing = 1 when it is name without a value */
static const char *match_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t l = strlen(name);
    const char *s = argv[*i];
    if (strncmp(s, name, l))
        return NULL;
    if (s[l] == '=')
        return s + l + 1;
    if (s[l])
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int is_name(const eg_cli_opt *o, const char *s)
{
    return !strcmp(s, o->name) || (o->alias && !strcmp(s, o->alias));
}

int eg_cli_next(int argc, char **argv, int *i, const eg_cli_opt *opts, const char **val)
{
    if (++*i >= argc)
        return EG_CLI_END;
    const char *s = argv[*i];
    *val = s;
    for (const eg_cli_opt *o = opts; o && o->name; o++) {
        if (!o->has_value) {
            if (is_name(o, s))
                return o->id;
            continue;
        }
        int missing = 0;
        const char *v = match_value(argc, argv, i, o->name, &missing);
        if (!v && !missing && o->alias)
            v = match_value(argc, argv, i, o->alias, &missing);
        if (missing)
            return EG_CLI_MISSING; /* *val: the option as written */
        if (v) {
            *val = v;
            return o->id;
        }
    }
    return s[0] == '-' && s[1] ? EG_CLI_UNKNOWN : EG_CLI_ARG;
}
