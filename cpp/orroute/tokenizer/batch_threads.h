// The helper threads of the batch calls (encode_batch, encode_batch_flat, count_batch): kept for
// the process, because a batch of 0.4 MB takes ~4 ms and starting a thread per call (its stack,
// its piece cache fetched from the pool, the vocabulary's lines cold on that core) cost ~10% of
// its CPU time.
//
// Their lifecycle is safe: they are joined at exit (and by stop_batch_helpers); a fork() never
// catches their lock held (pthread_atfork takes it first), and a forked child, where they do not
// exist, forgets them and starts its own on its first batch.
#pragma once

#include <functional>

namespace orroute {

// Runs `work` on the calling thread and, at the same time, on up to `helpers` helper threads
// (fewer if threads cannot be started); returns once every
// copy has returned. The caller never waits for a helper that has not taken the work yet (it
// withdraws those copies), so `work` must share its units among its copies (an atomic cursor)
// and finish them all even when it runs alone. `work` must not throw.
void run_with_helpers(const std::function<void()>& work, unsigned helpers);

// Number of helper threads alive now.
unsigned batch_helper_count();

// Stops the helper threads and joins them (each finishes the work it has taken first); the next
// batch call starts new ones. Runs at exit.
void stop_batch_helpers();

}  // namespace orroute
