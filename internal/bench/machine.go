package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
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

// ProcessCPU returns the user + system CPU time pid has used, all its
// threads together (/proc/PID/stat, read by prometheus/procfs).
func ProcessCPU(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), nil
}
