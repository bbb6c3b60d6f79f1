// SPDX-License-Identifier: MIT
// A C++ worker: the report must show demangled, qualified names, templates
// and a member function's locals.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <unistd.h>

#include "dogslow.h"

namespace shop {

template <typename T> struct Repository {
    __attribute__((noinline)) T fetch(int id, double seconds)
    {
        volatile int wanted = id;
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        return T(wanted);
    }
};

class OrderService {
  public:
    explicit OrderService(std::string name) : name_(std::move(name)) {}

    __attribute__((noinline)) long load(int id, double seconds)
    {
        volatile long total = 0;
        Repository<long> repo;
        total += repo.fetch(id, seconds);
        return total;
    }

  private:
    std::string name_;
};

} // namespace shop

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? std::stod(argv[1]) : 1.0;

    if (dogslow_register(nullptr) < 0) {
        std::printf("register-failed %s\n", dogslow_last_error());
        return 2;
    }
    shop::OrderService svc("orders");
    dogslow_begin("GET", "/cpp/orders/7");
    std::printf("ready pid=%d tid=%d\n", (int)getpid(), (int)gettid());
    std::fflush(stdout);
    long r = svc.load(7, seconds);
    dogslow_end();
    std::printf("done %ld\n", r);
    return 0;
}
