#ifndef SITES_H
#define SITES_H
void alloc_point(int site, void *caller);
void leak_in_lib(int site);
#endif
