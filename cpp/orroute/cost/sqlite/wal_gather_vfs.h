// A VFS over SQLite's default one that writes each WAL commit with one write() instead of two
// per page (one per 64 KiB for a bigger commit: the unix VFS writes at most 128 KiB a call). SQLite appends a WAL frame as two writes (its 24-byte header, then the page), so a
// settle that changes ~6 pages costs ~12 pwrite system calls, a third of its CPU. This VFS keeps
// a connection's consecutive frame writes in memory and writes them together when the commit
// frame's page arrives, before SQLite publishes the commit in the wal-index: other connections
// never see a frame that is not in the file. Every other operation on the WAL file (read, sync,
// truncate, size, close, a write that does not continue the run) writes what is gathered first;
// every other file passes straight through.
#pragma once

namespace orroute::sqlite {

// Registers the VFS (once per process, not as the default) and returns its name, or nullptr when
// it could not be registered (then open with SQLite's default VFS).
const char* wal_gather_vfs();

}  // namespace orroute::sqlite
