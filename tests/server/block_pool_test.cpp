// The page-segregated block pool (server/src/block_pool.cpp) that idle connections live in: its
// blocks are distinct and aligned, and pages go back to the system as they empty.
#include "faultline/server/block_pool.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>
#include <set>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

using faultline::server::block_pool;

namespace {

bool mapped(const void* p) {
    // mincore fails with ENOMEM on an address that is not mapped.
    unsigned char v = 0;
    const auto size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto page = reinterpret_cast<std::uintptr_t>(p) & ~(size - 1);
    return ::mincore(reinterpret_cast<void*>(page), size, &v) == 0;
}

} // namespace

TEST_CASE("block_pool: distinct, aligned, writable blocks; pages given back as they empty") {
    block_pool pool(700);
    CHECK(pool.block_size() == 704);
    const std::size_t per = pool.blocks_per_page();
    REQUIRE(per >= 80);
    CHECK(pool.pages() == 0);

    std::vector<void*> blocks;
    for (std::size_t i = 0; i < 10 * per; ++i) {
        void* p = pool.allocate();
        REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
        std::memset(p, static_cast<int>(i), pool.block_size()); // the whole block is ours
        blocks.push_back(p);
    }
    CHECK(std::set<void*>(blocks.begin(), blocks.end()).size() == blocks.size());
    CHECK(pool.in_use() == 10 * per);
    CHECK(pool.pages() == 10);
    // Nothing written into one block shows in another.
    for (std::size_t i = 0; i < blocks.size(); i += per / 3)
        CHECK(static_cast<unsigned char*>(blocks[i])[pool.block_size() - 1] == static_cast<unsigned char>(i));

    // Released in a shuffled order (connections close in any order): every page but one spare
    // goes back to the system, and its addresses are unmapped.
    std::mt19937 rng(7);
    std::shuffle(blocks.begin(), blocks.end(), rng);
    for (void* p : blocks)
        pool.deallocate(p);
    CHECK(pool.in_use() == 0);
    CHECK(pool.pages() == 1);
    std::size_t still_mapped = 0;
    for (void* p : blocks)
        still_mapped += mapped(p) ? 1 : 0;
    CHECK(still_mapped <= per); // the spare page's blocks at most

    // The spare serves the next allocation without a new page.
    void* again = pool.allocate();
    CHECK(pool.pages() == 1);
    pool.deallocate(again);
    CHECK(pool.pages() == 1);
}

TEST_CASE("block_pool: a page with one block still handed out stays, and fills again first") {
    block_pool pool(512);
    const std::size_t per = pool.blocks_per_page();
    std::vector<void*> first_page, second_page;
    for (std::size_t i = 0; i < per; ++i)
        first_page.push_back(pool.allocate());
    for (std::size_t i = 0; i < per; ++i)
        second_page.push_back(pool.allocate());
    CHECK(pool.pages() == 2);
    // All but one block of the first page back: it is not empty, so it stays mapped.
    for (std::size_t i = 1; i < per; ++i)
        pool.deallocate(first_page[i]);
    CHECK(pool.pages() == 2);
    CHECK(mapped(first_page[0]));
    // The second page empties: kept as the spare (one page is kept, no more).
    for (void* p : second_page)
        pool.deallocate(p);
    CHECK(pool.pages() == 2);
    // New blocks come from the page that has room, not from the spare (nor a third page).
    const auto page_of = [](const void* p) {
        return reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t(block_pool::page_bytes - 1);
    };
    std::vector<void*> more;
    for (std::size_t i = 1; i < per; ++i) {
        more.push_back(pool.allocate());
        CHECK(page_of(more.back()) == page_of(first_page[0]));
    }
    CHECK(pool.pages() == 2);
    CHECK(pool.in_use() == per);
    for (void* p : more)
        pool.deallocate(p);
    pool.deallocate(first_page[0]);
    CHECK(pool.in_use() == 0);
    CHECK(pool.pages() == 1);
    pool.deallocate(nullptr); // nothing
    CHECK(pool.in_use() == 0);
}

TEST_CASE("block_pool: a block larger than a page is refused") {
    CHECK_THROWS_AS(block_pool{block_pool::page_bytes}, std::bad_alloc);
    block_pool tiny(1);
    CHECK(tiny.block_size() == 16);
    void* p = tiny.allocate();
    CHECK(p != nullptr);
    tiny.deallocate(p);
}
