package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server the benchmark started: imaged or the baseline.
type child struct {
	name string
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	log  *os.File
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, once done
}

// moduleRoot is the directory of the main module's go.mod, so that the
// benchmark builds the right packages from any working directory inside it.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the imaged module: run go run ./bench from the repository")
	}
	return filepath.Dir(mod), nil
}

// goBuild builds pkg (relative to root) into out. overlay, when not empty,
// is a go build -overlay file; flags are more go build flags (-tags).
func goBuild(ctx context.Context, root, pkg, out, overlay string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// childEnv is the benchmark's environment without any IMAGED_* variable (so
// that a developer's settings cannot change what is measured), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGED_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startChild starts bin with args, its output going to logPath, and waits
// until GET base+readyPath answers 200.
func startChild(ctx context.Context, name, bin string, args, env []string, addr, readyPath, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, base: "http://" + addr, log: logf, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := c.waitReady(ctx, readyPath, 30*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("%s did not start: %w (its log: %s)", name, err, logPath)
	}
	return c, nil
}

func (c *child) waitReady(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited: %v", c.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", limit)
		}
	}
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child to shut down (SIGTERM) and kills it if it is still
// there after 25s (imaged drains for up to 20s).
func (c *child) stop() {
	if c == nil {
		return
	}
	defer c.log.Close()
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(25 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// memory is what /proc/PID/status says about a process's resident memory.
type memory struct {
	RSS, HWM int64 // VmRSS and VmHWM (peak), in bytes
}

// readMemory reads VmRSS and VmHWM of pid from /proc.
func readMemory(pid int) (memory, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %s: %q", pid, k, v)
		}
		if k == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return memory{}, err
	}
	if m.HWM == 0 {
		return memory{}, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return m, nil
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ), 100
// per second on every Linux platform Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time (user and system, all threads) that process
// pid has used so far, with a resolution of 10ms.
func cpuTime(pid int) (time.Duration, error) {
	_, cpu, err := procStat(pid)
	return cpu, err
}

// procStat reads the parent and the CPU time used so far (user and system,
// all threads, 10ms resolution) of process pid from /proc/PID/stat.
func procStat(pid int) (ppid int, cpu time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis, where field 3 (state) starts.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err0 := strconv.Atoi(f[1])               // field 4
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return ppid, time.Duration(utime+stime) * clockTick, nil
}

// treeCPU returns the CPU time used so far by process pid and by each of
// its children (a PostgreSQL server: the postmaster and its backends), by
// process id.
func treeCPU(pid int) (map[int]time.Duration, error) {
	_, cpu, err := procStat(pid)
	if err != nil {
		return nil, err
	}
	tree := map[int]time.Duration{pid: cpu}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		// A process may exit while this runs: skip what cannot be read.
		if ppid, cpu, err := procStat(p); err == nil && ppid == pid {
			tree[p] = cpu
		}
	}
	return tree, nil
}

// treeCPUSince is the CPU time the processes of tree used since then, an
// earlier sample of the same tree; a process started in between counts
// whole, one that exited is lost.
func treeCPUSince(then, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, cpu := range now {
		d += max(cpu-then[pid], 0)
	}
	return d
}

// serverProcess returns the id of the postmaster whose backend has id
// backendPID, if that server runs on this machine, or 0.
func serverProcess(backendPID int) int {
	ppid, _, err := procStat(backendPID)
	if err != nil || ppid <= 1 {
		return 0
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres") {
		return 0
	}
	return ppid
}

// machineBusy returns the CPU time all CPUs of the machine have spent busy
// (anything but idle and iowait) so far, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	var busy int64
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("/proc/stat: unexpected format")
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * clockTick, nil
}
