/* rotate module API: filled in by its module. */
#ifndef HARP_ROTATE_H
#define HARP_ROTATE_H
#endif
