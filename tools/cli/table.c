/* table.c: the tables the natsrpc command-line client prints. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
cli_table_init(cli_table *t, int ncols)
{
    t->ncols = ncols;
    t->nrows = 0;
    t->cells = NULL;
}

void
cli_table_row(cli_table *t, const char *const *cols)
{
    char **c = realloc(t->cells, (t->nrows + 1) * (size_t)t->ncols * sizeof *c);
    int i;

    if (c == NULL)
        return;
    t->cells = c;
    for (i = 0; i < t->ncols; i++)
        c[t->nrows * (size_t)t->ncols + (size_t)i] = strdup(cols[i] ? cols[i] : "");
    t->nrows++;
}

void
cli_table_print(cli_table *t, const char *indent)
{
    size_t w[CLI_TABLE_COLS] = {0}, r;
    int i;

    for (r = 0; r < t->nrows; r++)
        for (i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];
            size_t n = s ? strlen(s) : 0;
            if (n > w[i])
                w[i] = n;
        }
    for (r = 0; r < t->nrows; r++) {
        fputs(indent, stdout);
        for (i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];
            if (i == t->ncols - 1)
                printf("%s\n", s ? s : "");
            else
                printf("%-*s  ", (int)w[i], s ? s : "");
        }
    }
    for (r = 0; r < t->nrows * (size_t)t->ncols; r++)
        free(t->cells[r]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}
