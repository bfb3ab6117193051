/* main.c - the moonwatch command line (being written). */
#include "moonwatch.h"

int main(void)
{
    return 0;
}
