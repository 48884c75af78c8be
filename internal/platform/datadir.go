package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataDirInUse means another process holds the data directory's lock.
var ErrDataDirInUse = errors.New("data directory in use")

// lockFileName is the file under the data directory whose flock says who
// owns it; it holds the owner's pid, for the error a second process gets.
const lockFileName = "LOCK"

// dirLock is a held data directory lock.
type dirLock struct{ f *os.File }

// lockDataDir takes dir's lock without waiting. Two processes on one data
// directory would write the same JetStream and buntdb files and answer from
// different views of them, so the second one is refused at once, naming
// the holder's pid. The lock is an flock: the kernel releases it when the
// holder exits, however it exits, so a crash leaves no stale lock behind.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir lock %s: %w", path, err)
		}
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("%w: %s is held by %s (another surge on the same --data); stop it or choose another --data",
			ErrDataDirInUse, abs, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up. The file stays: removing it would let a third
// process lock a new file while a second still waits on the old one.
func (l *dirLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the last descriptor drops the flock
}

// globalAccount is the directory, under the JetStream store, of the
// account anonymous clients used before the embedded server required
// credentials.
const globalAccount = "$G"

// adoptGlobalAccount moves the streams and buckets of a data directory
// from before authenticated NATS into the application account, so an
// upgrade keeps the deployed functions, the orders backlog and every
// bucket. JetStream keeps an account's files in a directory named after
// it, and nothing in them names the account.
func adoptGlobalAccount(storeDir, account string, log *slog.Logger) error {
	from := filepath.Join(storeDir, "jetstream", globalAccount)
	to := filepath.Join(storeDir, "jetstream", account)
	if _, err := os.Stat(from); err != nil {
		return nil // nothing to adopt
	}
	if _, err := os.Stat(to); err == nil {
		log.Warn("JetStream data of anonymous clients left alone: the application account has its own", "dir", from)
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move JetStream data into the application account: %w", err)
	}
	log.Info("JetStream data moved into the application account", "from", from, "to", to)
	return nil
}
