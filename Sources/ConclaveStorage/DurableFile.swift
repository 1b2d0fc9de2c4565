import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that after a crash it is either whole or absent: temp file, fsync, rename, fsync of the
/// directory. A failed write (disk full, read-only) removes its temp file, so it leaves nothing behind.
enum DurableFile {
    static func write(_ data: Data, to target: String, temp: String) throws(StorageError) {
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", temp) }
        // Test-only: the crash suite stops the process half-way through a checkpoint write.
        let crashMidway = ProcessInfo.processInfo.environment["CONCLAVE_TEST_CRASH_AT"]?.split(separator: ",")
            .contains("mid-checkpoint") == true && target.hasSuffix(".safetensors")
        // 0 when every step worked, else the errno of the first that failed.
        var failed: Int32 = data.withUnsafeBytes { raw -> Int32 in
            var done = 0
            while done < raw.count {
                if crashMidway, done > 0 {
                    FileHandle.standardError.write(Data("crash hook: SIGKILL at mid-checkpoint\n".utf8))
                    kill(getpid(), SIGKILL)
                }
                let n = Glibc.write(fd, raw.baseAddress! + done, crashMidway && done == 0 ? raw.count / 2 : raw.count - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                done += n
            }
            return 0
        }
        if failed == 0, fsync(fd) != 0 { failed = errno }
        close(fd)
        if failed == 0, rename(temp, target) != 0 { failed = errno }
        guard failed == 0 else {
            unlink(temp)
            throw StorageError("cannot write \(target): \(String(cString: strerror(failed)))")
        }
        let dir = open((target as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    private static func failure(_ what: String, _ path: String) -> StorageError {
        StorageError("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
