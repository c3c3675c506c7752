#include "faultline/server/block_pool.hpp"

#include <cstdint>
#include <new>

#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTLINE_POOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FAULTLINE_POOL_ASAN 1
#endif
#if defined(FAULTLINE_POOL_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace faultline::server {

namespace {

#if defined(FAULTLINE_POOL_ASAN)
// Under AddressSanitizer a block is poisoned while it is not handed out (a use after release is
// reported like one of a freed heap block), and every page is a root for the leak checker (what
// a connection points to is reachable through it).
void poison(void* p, std::size_t n) {
    ASAN_POISON_MEMORY_REGION(p, n);
}
void unpoison(void* p, std::size_t n) {
    ASAN_UNPOISON_MEMORY_REGION(p, n);
}
void register_root(void* p, std::size_t n) {
    __lsan_register_root_region(p, n);
}
void unregister_root(void* p, std::size_t n) {
    __lsan_unregister_root_region(p, n);
}
#else
void poison(void*, std::size_t) {}
void unpoison(void*, std::size_t) {}
void register_root(void*, std::size_t) {}
void unregister_root(void*, std::size_t) {}
#endif

constexpr std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
}

} // namespace

struct block_pool::page {
    page* prev = nullptr;
    page* next = nullptr;
    void* free = nullptr;   ///< blocks given back, each holding the next
    std::size_t used = 0;   ///< blocks handed out
    std::size_t carved = 0; ///< blocks ever handed out from the page's untouched end
};

block_pool::block_pool(std::size_t block_bytes)
    : block_bytes_(round_up(block_bytes < sizeof(void*) ? sizeof(void*) : block_bytes, 16))
    , first_offset_(round_up(sizeof(page), 64))
    , per_page_(block_bytes_ <= page_bytes - first_offset_ ? (page_bytes - first_offset_) / block_bytes_
                                                           : 0) {
    if (per_page_ == 0) throw std::bad_alloc(); // a block larger than a page: not what this is for
}

block_pool::~block_pool() {
    // Every other page holds a block still handed out (an empty page is the spare or unmapped).
    if (spare_) unmap_page(spare_);
}

block_pool::page* block_pool::map_page() {
    // Twice the size, then the unaligned head and tail go back: a page aligned to its size.
    void* raw = ::mmap(nullptr, 2 * page_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = round_up(start, page_bytes);
    if (aligned > start) ::munmap(raw, aligned - start);
    if (aligned + page_bytes < start + 2 * page_bytes)
        ::munmap(reinterpret_cast<void*>(aligned + page_bytes),
                 start + 2 * page_bytes - (aligned + page_bytes));
    void* at = reinterpret_cast<void*>(aligned);
    register_root(at, page_bytes);
    poison(static_cast<char*>(at) + first_offset_, page_bytes - first_offset_);
    return new (at) page();
}

void block_pool::unmap_page(page* p) noexcept {
    unpoison(p, page_bytes); // the shadow stays with the address, which the next mapping may reuse
    unregister_root(p, page_bytes);
    p->~page();
    ::munmap(p, page_bytes);
}

void block_pool::unlink(page* p) noexcept {
    if (p->prev)
        p->prev->next = p->next;
    else
        open_ = p->next;
    if (p->next) p->next->prev = p->prev;
    p->prev = p->next = nullptr;
}

void* block_pool::allocate() {
    std::lock_guard lock(mutex_);
    if (!open_) {
        page* p = spare_;
        if (p) {
            spare_ = nullptr;
        } else {
            p = map_page();
            ++pages_;
        }
        open_ = p; // a page with room is in open_ (one that is full, or the spare, is not)
    }
    page* p = open_;
    void* block;
    if (p->free) {
        block = p->free;
        unpoison(block, sizeof(void*));
        p->free = *static_cast<void**>(block);
    } else {
        block = reinterpret_cast<char*>(p) + first_offset_ + p->carved * block_bytes_;
        ++p->carved;
    }
    unpoison(block, block_bytes_);
    if (++p->used == per_page_) unlink(p);
    ++in_use_;
    return block;
}

void block_pool::deallocate(void* block) noexcept {
    if (!block) return;
    auto* p = reinterpret_cast<page*>(reinterpret_cast<std::uintptr_t>(block) & ~(page_bytes - 1));
    std::lock_guard lock(mutex_);
    *static_cast<void**>(block) = p->free;
    p->free = block;
    poison(block, block_bytes_);
    --in_use_;
    const bool was_full = p->used-- == per_page_;
    if (p->used == 0) {
        if (!was_full) unlink(p);
        if (!spare_) {
            // Kept for the next connection, emptied: its blocks are carved again from the start.
            p->free = nullptr;
            p->carved = 0;
            spare_ = p;
        } else {
            unmap_page(p);
            --pages_;
        }
        return;
    }
    if (was_full) { // it has a free block again
        p->next = open_;
        if (open_) open_->prev = p;
        open_ = p;
    }
}

std::size_t block_pool::in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

std::size_t block_pool::pages() const {
    std::lock_guard lock(mutex_);
    return pages_;
}

} // namespace faultline::server
