package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs     int    `json:"cpus"`      // logical CPUs
	CPUModel string `json:"cpu_model"` // from /proc/cpuinfo
	MemKiB   int64  `json:"mem_kib"`   // MemTotal
	Kernel   string `json:"kernel"`    // kernel release
	OS       string `json:"os"`        // GOOS/GOARCH
	// Go is the Go version this binary was built with.
	Go string `json:"go"`
	// Versions are the versions of nats-server, nats.go and echo built in.
	Versions map[string]string `json:"versions"`
}

// versionOf lists the dependencies whose versions a report names.
var versionOf = map[string]string{
	"github.com/nats-io/nats-server/v2": "nats-server",
	"github.com/nats-io/nats.go":        "nats.go",
	"github.com/labstack/echo/v4":       "echo",
}

// ReadMachine describes this machine and binary (Linux /proc where it can;
// elsewhere the fields it cannot read stay empty).
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Go: runtime.Version(), Versions: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(b, "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemKiB = procKiB(b, "MemTotal")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if name, ok := versionOf[d.Path]; ok {
				m.Versions[name] = d.Version
			}
		}
	}
	return m
}

// procField is the value of the first "key : value" line of a /proc file.
func procField(b []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procKiB is a "Key: 123 kB" value of /proc/meminfo or /proc/PID/status.
func procKiB(b []byte, key string) int64 {
	f := strings.Fields(procField(b, key))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64) // 0 when malformed: reported as unknown
	return n
}

// ProcessRSS returns a process's current and peak resident set size in
// KiB (VmRSS and VmHWM of /proc/PID/status).
func ProcessRSS(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return procKiB(b, "VmRSS"), procKiB(b, "VmHWM"), nil
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture it runs on.
const userHZ = 100

// ProcessCPU returns the user + system CPU time pid has used, all its
// threads together (fields 14 and 15 of /proc/PID/stat).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields after its closing one, which is field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 13", pid, len(fs))
	}
	var ticks int64
	for _, f := range fs[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
