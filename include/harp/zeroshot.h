/* zeroshot module API: filled in by its module. */
#ifndef HARP_ZEROSHOT_H
#define HARP_ZEROSHOT_H
#endif
