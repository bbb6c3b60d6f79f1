/* SPDX-License-Identifier: MIT */
/*
 * Local variables of native frames, the way `gdb bt full` shows them, from
 * data copied out of the worker.
 *
 * For each variable or parameter in scope, the DWARF location expression in
 * force at the frame's pc is evaluated (dwarf_expr.c) against the frame's
 * registers and the CFA.  The result is a memory address, a register's
 * value, or a computed value; the bytes are then shown according to the
 * variable's type: integers, floats, bools, enums by name, pointers (with
 * the C string for char *), char arrays as strings, structs and unions one
 * level deep, arrays with their first elements.
 *
 * Memory is read through a remote_mem over capture's snapshot_read(), which
 * serves the stack copy first and the live process otherwise (a char * into
 * the heap, say), with a budget per report.  Everything the worker controls
 * is bounded: expression length, evaluation stack, type chains, members,
 * elements, string lengths.  A failed read shows as <unreadable>, never
 * aborts the report.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dwarf.h>
#include <elfutils/libdwfl.h>

#include "analysis.h"
#include "dwarf_expr.h"
#include "textbuf.h"
#include "util.h"

/* ---- output ------------------------------------------------------------ */

/* A string shown C-style: "..." with escapes, at most max bytes of it. */
static void put_quoted(struct dsl_text *b, const char *s, size_t n, bool more)
{
    dsl_text_puts(b, "\"");
    for (size_t i = 0; i < n && !b->full; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            dsl_text_printf(b, "\\%c", c);
        else if (c == '\n')
            dsl_text_puts(b, "\\n");
        else if (c == '\t')
            dsl_text_puts(b, "\\t");
        else if (c < 0x20 || c >= 0x7f)
            dsl_text_printf(b, "\\%03o", c);
        else
            dsl_text_add(b, &s[i], 1);
    }
    dsl_text_puts(b, more ? "\"..." : "\"");
}

/* ---- memory: the snapshot, through capture's snapshot_read() ------------- */

static int snap_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return snapshot_read(ctx, addr, buf, len);
}

void locals_begin(struct locals_ctx *lc, const struct config *cfg, struct worker *w,
                  const struct snapshot *s)
{
    memset(lc, 0, sizeof(*lc));
    lc->cfg = cfg;
    lc->w = w;
    lc->s = s;
    lc->mem.read = snap_read;
    lc->mem.ctx = (void *)s;
    lc->mem.budget = LOCALS_READ_BUDGET;
    lc->value_max = cfg->max_value_bytes ? cfg->max_value_bytes : 2048;
    if (lc->value_max < 32)
        lc->value_max = 32;
    if (lc->value_max > 4096)
        lc->value_max = 4096;
}

void locals_end(struct locals_ctx *lc)
{
    (void)lc;
}

/* ---- types and values --------------------------------------------------- */

/* Follow typedefs and qualifiers to the type that says what the bytes are. */
static bool strip_type(Dwarf_Die *type, Dwarf_Die *ret)
{
    Dwarf_Die cur = *type;

    for (int hops = 0; hops < 32; hops++) {
        int tag = dwarf_tag(&cur);
        Dwarf_Attribute attr;

        if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
            tag != DW_TAG_restrict_type && tag != DW_TAG_atomic_type) {
            *ret = cur;
            return true;
        }
        if (!dwarf_attr_integrate(&cur, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &cur))
            return false; /* const void */
    }
    return false;
}

static bool die_type(Dwarf_Die *die, Dwarf_Die *ret)
{
    Dwarf_Attribute attr;
    return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, ret);
}

static uint64_t udata(Dwarf_Die *die, unsigned at, uint64_t dflt)
{
    Dwarf_Attribute attr;
    Dwarf_Word v;
    return (dwarf_attr_integrate(die, at, &attr) && dwarf_formudata(&attr, &v) == 0) ? v : dflt;
}

static bool is_char_type(Dwarf_Die *t)
{
    Dwarf_Die s;
    if (!strip_type(t, &s) || dwarf_tag(&s) != DW_TAG_base_type)
        return false;
    uint64_t enc = udata(&s, DW_AT_encoding, 0);
    return udata(&s, DW_AT_byte_size, 0) == 1 &&
           (enc == DW_ATE_signed_char || enc == DW_ATE_unsigned_char ||
            enc == DW_ATE_UTF);
}

static void format_typed(struct locals_ctx *lc, Dwarf_Die *type, const uint8_t *bytes, size_t len,
                         uint64_t addr, int depth, struct dsl_text *out);

static uint64_t load_int(const uint8_t *b, size_t size, bool sign)
{
    uint64_t v = 0;

    if (size > 8)
        size = 8;
    memcpy(&v, b, size);
    if (sign && size < 8 && (v >> (size * 8 - 1)) & 1)
        v |= ~0ull << (size * 8);
    return v;
}

static void format_base(Dwarf_Die *t, const uint8_t *b, size_t len, struct dsl_text *out)
{
    uint64_t size = udata(t, DW_AT_byte_size, 0), enc = udata(t, DW_AT_encoding, 0);

    if (size == 0 || size > len) {
        dsl_text_printf(out, "<unreadable>");
        return;
    }
    switch (enc) {
    case DW_ATE_boolean: {
        uint64_t v = load_int(b, size, false);
        if (v <= 1)
            dsl_text_printf(out, "%s", v ? "true" : "false");
        else
            dsl_text_printf(out, "%" PRIu64, v);
        break;
    }
    case DW_ATE_float:
        if (size == 4) {
            float f;
            memcpy(&f, b, 4);
            dsl_text_printf(out, "%.9g", (double)f);
        } else if (size == 8) {
            double f;
            memcpy(&f, b, 8);
            dsl_text_printf(out, "%.17g", f);
        } else if (size == 16 || size == 10) {
            long double f = 0;
            memcpy(&f, b, size < sizeof(f) ? size : sizeof(f));
            dsl_text_printf(out, "%.21Lg", f);
        } else {
            dsl_text_printf(out, "<float of %" PRIu64 " bytes>", size);
        }
        break;
    case DW_ATE_signed_char:
    case DW_ATE_unsigned_char: {
        uint64_t v = load_int(b, size, enc == DW_ATE_signed_char);
        unsigned char c = (unsigned char)v;
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
            dsl_text_printf(out, "%" PRId64 " '%c'", (int64_t)v, c);
        else
            dsl_text_printf(out, "%" PRId64 " '\\%03o'", (int64_t)v, c);
        break;
    }
    case DW_ATE_signed:
        if (size == 16) {
            dsl_text_printf(out, "0x%016" PRIx64 "%016" PRIx64, load_int(b + 8, 8, false),
                            load_int(b, 8, false));
            break;
        }
        dsl_text_printf(out, "%" PRId64, (int64_t)load_int(b, size, true));
        break;
    default:
        if (size == 16) {
            dsl_text_printf(out, "0x%016" PRIx64 "%016" PRIx64, load_int(b + 8, 8, false),
                            load_int(b, 8, false));
            break;
        }
        dsl_text_printf(out, "%" PRIu64, load_int(b, size, false));
        break;
    }
}

static void format_cstring(struct locals_ctx *lc, uint64_t p, struct dsl_text *out)
{
    char buf[4097];
    size_t max = lc->value_max < sizeof(buf) - 1 ? lc->value_max : sizeof(buf) - 1;
    int n = remote_read_cstr(&lc->mem, p, buf, max + 1);

    if (n < 0) {
        dsl_text_printf(out, " <unreadable>");
        return;
    }
    dsl_text_printf(out, " ");
    put_quoted(out, buf, (size_t)n, (size_t)n >= max);
}

static void format_pointer(struct locals_ctx *lc, Dwarf_Die *t, const uint8_t *b, size_t len,
                           struct dsl_text *out)
{
    uint64_t p;
    Dwarf_Die target, st;

    if (len < 8) {
        dsl_text_printf(out, "<unreadable>");
        return;
    }
    memcpy(&p, b, 8);
    dsl_text_printf(out, "0x%" PRIx64, p);
    if (p == 0 || !die_type(t, &target))
        return;
    if (is_char_type(&target)) {
        format_cstring(lc, p, out);
        return;
    }
    if (strip_type(&target, &st) && dwarf_tag(&st) == DW_TAG_subroutine_type && lc->w->dwfl) {
        Dwfl_Module *m = dwfl_addrmodule(lc->w->dwfl, p);
        const char *name = m ? dwfl_module_addrname(m, p) : NULL;
        if (name)
            dsl_text_printf(out, " <%s>", name);
    }
}

static void format_enum(Dwarf_Die *t, const uint8_t *b, size_t len, struct dsl_text *out)
{
    uint64_t size = udata(t, DW_AT_byte_size, 4);
    Dwarf_Die child;
    int64_t v;
    int guard = 0;

    if (size == 0 || size > 8 || size > len) {
        dsl_text_printf(out, "<unreadable>");
        return;
    }
    v = (int64_t)load_int(b, size, true);
    if (dwarf_child(t, &child) == 0) {
        do {
            Dwarf_Attribute attr;
            Dwarf_Sword sv;
            Dwarf_Word uv;
            if (dwarf_tag(&child) != DW_TAG_enumerator ||
                !dwarf_attr(&child, DW_AT_const_value, &attr))
                continue;
            bool match = (dwarf_formsdata(&attr, &sv) == 0 && sv == v) ||
                         (dwarf_formudata(&attr, &uv) == 0 &&
                          uv == load_int(b, size, false));
            if (match && dwarf_diename(&child)) {
                dsl_text_printf(out, "%s", dwarf_diename(&child));
                return;
            }
        } while (++guard < 4096 && dwarf_siblingof(&child, &child) == 0);
    }
    dsl_text_printf(out, "%" PRId64, v);
}

static void format_struct(struct locals_ctx *lc, Dwarf_Die *t, const uint8_t *b, size_t len,
                          uint64_t addr, int depth, struct dsl_text *out)
{
    Dwarf_Die child;
    unsigned shown = 0;
    int guard = 0;

    if (depth > 0) {
        dsl_text_printf(out, "{...}");
        return;
    }
    dsl_text_printf(out, "{");
    if (dwarf_child(t, &child) == 0) {
        do {
            Dwarf_Die mt;
            const char *name;
            uint64_t off;

            if (dwarf_tag(&child) != DW_TAG_member)
                continue;
            if (shown == LOCALS_STRUCT_MEMBERS) {
                dsl_text_printf(out, ", ...");
                break;
            }
            name = dwarf_diename(&child);
            dsl_text_printf(out, "%s%s = ", shown ? ", " : "", name ? name : "<anon>");
            shown++;
            if (dwarf_hasattr(&child, DW_AT_bit_size)) {
                dsl_text_printf(out, "<bitfield>");
                continue;
            }
            off = udata(&child, DW_AT_data_member_location, 0);
            if (name && redact_name(lc->cfg, name)) {
                dsl_text_printf(out, "[redacted]");
                continue;
            }
            if (!die_type(&child, &mt) || off >= len) {
                dsl_text_printf(out, "<unreadable>");
                continue;
            }
            format_typed(lc, &mt, b + off, len - off, addr ? addr + off : 0, depth + 1, out);
        } while (!out->full && ++guard < 4096 && dwarf_siblingof(&child, &child) == 0);
    }
    dsl_text_printf(out, "}");
}

static void format_array(struct locals_ctx *lc, Dwarf_Die *t, const uint8_t *b, size_t len,
                         uint64_t addr, int depth, struct dsl_text *out)
{
    Dwarf_Die elem, sub;
    Dwarf_Word esize = 0;
    uint64_t count = 0;
    bool have_count = false;

    if (!die_type(t, &elem) || dwarf_aggregate_size(&elem, &esize) != 0 || esize == 0) {
        dsl_text_printf(out, "<array>");
        return;
    }
    if (dwarf_child(t, &sub) == 0 && dwarf_tag(&sub) == DW_TAG_subrange_type) {
        if (dwarf_hasattr(&sub, DW_AT_count)) {
            count = udata(&sub, DW_AT_count, 0);
            have_count = true;
        } else if (dwarf_hasattr(&sub, DW_AT_upper_bound)) {
            count = udata(&sub, DW_AT_upper_bound, 0) + 1;
            have_count = true;
        }
    }
    if (is_char_type(&elem)) {
        size_t n = have_count ? (size_t)(count < len ? count : len) : len;
        size_t shown = n < lc->value_max ? n : lc->value_max;
        const char *nul = memchr(b, '\0', shown);
        if (nul)
            shown = (size_t)(nul - (const char *)b);
        put_quoted(out, (const char *)b, shown, !nul && n > shown);
        return;
    }
    if (depth > 0) {
        dsl_text_printf(out, "{...}");
        return;
    }
    dsl_text_printf(out, "{");
    uint64_t n = have_count ? count : 0;
    for (uint64_t i = 0; i < n && i < LOCALS_ARRAY_ITEMS && !out->full; i++) {
        if ((i + 1) * esize > len) {
            dsl_text_printf(out, "%s<unreadable>", i ? ", " : "");
            break;
        }
        if (i)
            dsl_text_printf(out, ", ");
        format_typed(lc, &elem, b + i * esize, esize, addr ? addr + i * esize : 0, depth + 1,
                     out);
    }
    if (n > LOCALS_ARRAY_ITEMS)
        dsl_text_printf(out, ", ... (%" PRIu64 " elements)", n);
    dsl_text_printf(out, "}");
}

static void format_typed(struct locals_ctx *lc, Dwarf_Die *type, const uint8_t *bytes, size_t len,
                         uint64_t addr, int depth, struct dsl_text *out)
{
    Dwarf_Die t;

    if (!strip_type(type, &t)) {
        dsl_text_printf(out, "<void>");
        return;
    }
    switch (dwarf_tag(&t)) {
    case DW_TAG_base_type:
        format_base(&t, bytes, len, out);
        break;
    case DW_TAG_pointer_type:
    case DW_TAG_reference_type:
    case DW_TAG_rvalue_reference_type:
    case DW_TAG_ptr_to_member_type:
        format_pointer(lc, &t, bytes, len, out);
        break;
    case DW_TAG_enumeration_type:
        format_enum(&t, bytes, len, out);
        break;
    case DW_TAG_structure_type:
    case DW_TAG_class_type:
    case DW_TAG_union_type:
        format_struct(lc, &t, bytes, len, addr, depth, out);
        break;
    case DW_TAG_array_type:
        format_array(lc, &t, bytes, len, addr, depth, out);
        break;
    default:
        dsl_text_printf(out, "<not shown>");
        break;
    }
}

/* Bytes of the object: how many to read for a type (bounded). */
static size_t value_size(Dwarf_Die *type)
{
    Dwarf_Die t;
    Dwarf_Word size = 0;

    if (!strip_type(type, &t) || dwarf_aggregate_size(&t, &size) != 0)
        return 0;
    return size > 4096 ? 4096 : (size_t)size;
}

static char *format_var(struct locals_ctx *lc, struct eval_env *env, Dwarf_Die *var)
{
    char text[4200];
    struct dsl_text out;
    Dwarf_Attribute attr;
    Dwarf_Die type;
    Dwarf_Op *ops;
    size_t nops;
    struct loc l;
    uint8_t buf[4096];
    size_t size;

    /* Cut to fit: what is shown of a long value is its start. */
    dsl_text_init_fixed(&out, text,
                        lc->value_max + 64 < sizeof(text) ? lc->value_max + 64 : sizeof(text),
                        DSL_TEXT_CUT);
    if (!die_type(var, &type)) {
        dsl_text_printf(&out, "<no type>");
        goto done;
    }
    size = value_size(&type);
    if (!dwarf_attr_integrate(var, DW_AT_location, &attr)) {
        Dwarf_Sword sv;
        if (dwarf_attr_integrate(var, DW_AT_const_value, &attr) &&
            dwarf_formsdata(&attr, &sv) == 0) {
            uint64_t v = (uint64_t)sv;
            memcpy(buf, &v, 8);
            format_typed(lc, &type, buf, size < 8 ? size : 8, 0, 0, &out);
        } else {
            dsl_text_printf(&out, "<optimized out>");
        }
        goto done;
    }
    int nl = dwarf_getlocation_addr(&attr, env->pc, &ops, &nops, 1);
    if (nl <= 0) {
        dsl_text_printf(&out, "<optimized out>");
        goto done;
    }
    eval_expr(env, &attr, ops, nops, &l);
    switch (l.kind) {
    case LOC_MEM:
        if (size == 0) {
            dsl_text_printf(&out, "<incomplete type>");
            break;
        }
        /* Read what we can: a large object partly, from its start. */
        while (size > 0 && remote_read(&lc->mem, l.addr, buf, size) < 0) {
            if (size <= 8) {
                size = 0;
                break;
            }
            size /= 2;
        }
        if (size == 0) {
            dsl_text_printf(&out, "<unreadable at 0x%" PRIx64 ">", l.addr);
            break;
        }
        format_typed(lc, &type, buf, size, l.addr, 0, &out);
        break;
    case LOC_VALUE:
        memset(buf, 0, 32);
        memcpy(buf, l.bytes, l.len);
        format_typed(lc, &type, buf, size && size < 32 ? size : 32, 0, 0, &out);
        break;
    case LOC_SYNTHETIC:
        dsl_text_printf(&out, "<synthetic pointer>");
        break;
    case LOC_UNAVAILABLE:
        dsl_text_printf(&out, "<%s>", l.why ? l.why : "unavailable");
        break;
    default:
        dsl_text_printf(&out, "<optimized out>");
        break;
    }
done:
    if (out.full || out.len > lc->value_max) {
        /* Cut long values, and say so. */
        size_t keep = out.len > lc->value_max ? lc->value_max : out.len;
        char *r = malloc(keep + 4);
        if (r) {
            memcpy(r, text, keep);
            memcpy(r + keep, "...", 4);
        }
        return r;
    }
    return strdup(text);
}

static void add_var(struct symframe *out, const char *name, char *value)
{
    struct var *v;

    if (!value)
        return;
    v = realloc(out->vars, (out->nvars + 1) * sizeof(*v));
    if (!v) {
        free(value);
        return;
    }
    out->vars = v;
    v[out->nvars].name = strdup(name);
    v[out->nvars].value = value;
    if (!v[out->nvars].name) {
        free(value);
        return;
    }
    out->nvars++;
}

static void collect_scope(struct locals_ctx *lc, struct eval_env *env, Dwarf_Die *scope,
                          struct symframe *out)
{
    Dwarf_Die child;
    int guard = 0;

    if (dwarf_child(scope, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        const char *name;

        if (tag != DW_TAG_variable && tag != DW_TAG_formal_parameter)
            continue;
        if (dwarf_hasattr(&child, DW_AT_declaration))
            continue; /* an extern declaration, not a variable here */
        name = dwarf_diename(&child);
        if (!name)
            continue;
        if (out->nvars >= LOCALS_VARS_PER_FRAME || lc->vars_total >= LOCALS_VARS_PER_REPORT) {
            out->vars_note = "more locals not shown";
            return;
        }
        lc->vars_total++;
        if (redact_name(lc->cfg, name)) {
            add_var(out, name, strdup("[redacted]"));
            continue;
        }
        char *value = format_var(lc, env, &child);
        if (value && redact_card_number(value)) {
            free(value);
            value = strdup("[redacted]");
        }
        add_var(out, name, value);
    } while (++guard < 65536 && dwarf_siblingof(&child, &child) == 0);
}

void locals_collect(struct locals_ctx *lc, Dwarf_Die *cu, Dwarf_Die *scopes, int from, int to,
                    Dwarf_Die *subprogram, Dwarf_Addr pc, Dwarf_Addr bias,
                    const struct frame *fr, const struct frame *caller, struct symframe *out)
{
    struct eval_env env = {
        .lc = lc,
        .fr = fr,
        .caller = caller,
        .subprogram = subprogram,
        .pc = pc,
        .bias = bias,
    };

    (void)cu;
    /* The function's own parameters and variables first, then those of the
     * blocks nested inside it, outermost block first. */
    for (int i = to; i >= from; i--)
        collect_scope(lc, &env, &scopes[i], out);
}
