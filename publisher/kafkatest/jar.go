package kafkatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// pom lists the broker's jars; scripts/kafka/fetch.sh reads the same file.
//
//go:embed pom.xml
var pom []byte

// JarOptions configures StartJar. The zero value is ready to use.
type JarOptions struct {
	Libs       string            // jar folder; default: CALLPUB_TEST_KAFKA_LIBS, else the mvn-filled cache
	Java       string            // default: $JAVA_HOME/bin/java, else java on PATH
	JVMOpts    []string          // default: CALLPUB_TEST_KAFKA_JVM_OPTS, else -Xms512m -Xmx1g
	ExtraProps map[string]string // added to, or replacing, the server.properties below
	// ExtraListeners maps a listener name to its security protocol, e.g.
	// {"SASL_SSL": "SASL_SSL"}. Each gets a free loopback port, is advertised,
	// and its address is in Broker.Listeners. Configure it with ExtraProps
	// (listener.name.sasl_ssl.*, ssl.*).
	ExtraListeners map[string]string
	// FormatArgs are added to `kafka-storage format`, e.g. "--add-scram",
	// "SCRAM-SHA-512=[name=alice,password=secret]".
	FormatArgs   []string
	StartTimeout time.Duration // default 120s
}

// serverProps is one combined broker+controller on 127.0.0.1 with a static
// quorum. Topics are never auto-created: tests create them with Topic.
func serverProps(dataDir string, brokerPort, controllerPort int) map[string]string {
	return map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          "1",
		"controller.quorum.voters":                         fmt.Sprintf("1@127.0.0.1:%d", controllerPort),
		"controller.listener.names":                        "CONTROLLER",
		"listeners":                                        fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", brokerPort, controllerPort),
		"advertised.listeners":                             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", brokerPort),
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                                         dataDir,
		"auto.create.topics.enable":                        "false",
		"num.partitions":                                   "1",
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
	}
}

// Console-only logging. Kafka 4.x reads the Log4j 2 file, 3.9 the Log4j 1 file;
// each ignores the other's system property, so both are always passed.
const log4j2Props = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
`

const log4j1Props = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
`

// jvmOpts are the stock kafka-run-class.sh performance flags.
var jvmOpts = []string{"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
	"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
	"-Djava.awt.headless=true"}

func javaBin() (string, error) {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		p := filepath.Join(h, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("java")
}

// libsDir is where fetch.sh and this package keep the jars: one folder per
// pom.xml content, so a version bump never mixes old and new jars.
func libsDir() (string, error) {
	root := os.Getenv(EnvCache)
	if root == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			base = filepath.Join(home, ".cache")
		}
		root = filepath.Join(base, "callpub-kafka")
	}
	sum := sha256.Sum256(pom)
	return filepath.Join(root, hex.EncodeToString(sum[:])[:12], "libs"), nil
}

// jarLibs returns the jar folder, fetching it with mvn if needed,
// or a reason why the jar broker cannot be used.
func jarLibs() (libs, why string) {
	if _, err := javaBin(); err != nil {
		return "", "java not found"
	}
	if d := os.Getenv(EnvLibs); d != "" {
		return d, ""
	}
	dir, err := libsDir()
	if err != nil {
		return "", err.Error()
	}
	if err := fetchLibs(dir); err != nil {
		return "", err.Error()
	}
	return dir, ""
}

// fetchLibs fills dir with mvn unless it exists. It copies into a private
// folder and renames it into place, so parallel test binaries never see half a folder.
func fetchLibs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return errors.New("no cached jars and mvn not found")
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "pom.xml"), pom, 0o644); err != nil {
		return err
	}
	out := filepath.Join(tmp, "libs")
	cmd := exec.Command(mvn, "-B", "-q", "-Dstyle.color=never", "-f", filepath.Join(tmp, "pom.xml"),
		"org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mvn copy-dependencies: %v\n%s", err, b)
	}
	if err := checkLibs(out); err != nil {
		return err
	}
	if err := os.Rename(out, dir); err != nil {
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil // another test binary got there first
		}
		return err
	}
	return nil
}

// checkLibs wants the broker jar and exactly one SLF4J 1.7 binding
// (two bindings pick one at random; an SLF4J 2 provider or none means no logs).
func checkLibs(dir string) error {
	if m, _ := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar")); len(m) == 0 {
		return errors.New("mvn copied no kafka_2.13 jar")
	}
	var bindings []string
	for _, p := range []string{"log4j-slf4j-impl-", "log4j-slf4j2-impl-", "slf4j-reload4j-", "slf4j-log4j12-",
		"slf4j-simple-", "slf4j-jdk14-", "slf4j-nop-", "logback-classic-"} {
		m, _ := filepath.Glob(filepath.Join(dir, p+"*.jar"))
		bindings = append(bindings, m...)
	}
	if len(bindings) != 1 || !(strings.Contains(bindings[0], "log4j-slf4j-impl-") ||
		strings.Contains(bindings[0], "slf4j-reload4j-")) {
		return fmt.Errorf("want one SLF4J 1.7 binding, got %q", bindings)
	}
	return nil
}

// freePorts returns n distinct loopback ports that nothing uses now, chosen
// below the kernel's ephemeral range. A port inside that range can be taken
// at any moment as the local end of an outgoing connection, even by the
// broker itself dialling its controller before the controller listens (a TCP
// self-connect); the broker then dies with "Address already in use".
func freePorts(n int) ([]int, error) {
	lo, hi := portRange()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var ports []int
	for try := 0; len(ports) < n && try < 100*n; try++ {
		var b [4]byte
		_, _ = rand.Read(b[:])
		p := lo + int(binary.BigEndian.Uint32(b[:])%uint32(hi-lo+1))
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken, or drawn twice (still held)
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("no %d free loopback ports in %d-%d", n, lo, hi)
	}
	return ports, nil
}

// freePort is freePorts(1).
func freePort() (int, error) {
	ps, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// portRange is the span freePort draws from: 10000 up to the first ephemeral
// port, or above the ephemeral range when it starts too low to leave room.
func portRange() (lo, hi int) {
	first, last := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			fmt.Sscan(f[0], &first)
			fmt.Sscan(f[1], &last)
		}
	}
	if first > 11024 {
		return 10000, first - 1
	}
	return min(last+1, 64000), 65000
}

// newClusterID returns 16 random bytes in base64url without padding (22
// characters), the form `kafka-storage random-uuid` prints.
// An id starting with '-' would be read by kafka-storage as an option (about
// 1 start in 64 failed so), so such a draw is drawn again.
func newClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = (b[6] & 0x0f) | 0x40 // a version 4 UUID, like java.util.UUID.randomUUID
		b[8] = (b[8] & 0x3f) | 0x80
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// StartJar formats a fresh data folder and starts kafka.Kafka on free ports.
// It returns once the broker answers an ApiVersions request.
func StartJar(o JarOptions) (*Broker, error) {
	if o.Libs == "" {
		libs, why := jarLibs()
		if why != "" {
			return nil, errors.New(why)
		}
		o.Libs = libs
	}
	java := o.Java
	if java == "" {
		j, err := javaBin()
		if err != nil {
			return nil, err
		}
		java = j
	}
	if len(o.JVMOpts) == 0 {
		o.JVMOpts = strings.Fields(os.Getenv(EnvJVMOpts))
	}
	if len(o.JVMOpts) == 0 {
		o.JVMOpts = []string{"-Xms512m", "-Xmx1g"}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 120 * time.Second
	}

	for attempt := 1; ; attempt++ {
		b, err := startJarOnce(o, java)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			return b, err
		}
	}
}

// errPortTaken marks a start that lost its port to another socket between
// freePort and the broker's bind: worth another try on other ports.
var errPortTaken = errors.New("a port was taken before the broker bound it")

// startJarOnce starts one broker in a fresh temporary folder: it writes the
// configuration, formats the storage, starts kafka.Kafka and waits until it
// answers. A port lost to another socket is errPortTaken; on other failures
// the folder is kept for inspection.
func startJarOnce(o JarOptions, java string) (*Broker, error) {
	dir, err := os.MkdirTemp("", "callpub-kafka-")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(o.ExtraListeners))
	for name := range o.ExtraListeners {
		names = append(names, name)
	}
	sort.Strings(names)
	ports, err := freePorts(2 + len(names))
	if err != nil {
		return nil, err
	}
	brokerPort, controllerPort := ports[0], ports[1]

	props := serverProps(filepath.Join(dir, "data"), brokerPort, controllerPort)
	listeners := addListeners(props, names, ports[2:], o.ExtraListeners)
	for k, v := range o.ExtraProps {
		props[k] = v
	}
	files, err := writeJarFiles(dir, props)
	if err != nil {
		return nil, err
	}
	cp := filepath.Join(o.Libs, "*") // the JVM expands the wildcard, not a shell
	if err := formatStorage(java, cp, files, o.FormatArgs, dir); err != nil {
		return nil, err
	}
	proc, err := launchBroker(java, cp, files, o.JVMOpts, dir)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", brokerPort)

	// Ready when a Kafka request succeeds, not when the port accepts.
	if err := waitReady(context.Background(), []string{addr}, o.StartTimeout, proc.exited); err != nil {
		proc.stop()
		return nil, notReadyError(err, dir, proc.logPath, ports)
	}
	b := &Broker{Addrs: []string{addr}, Kind: Jar, Dir: dir, Listeners: listeners}
	b.stop = func() { proc.stop(); _ = os.RemoveAll(dir) }
	return b, nil
}

// addListeners adds one loopback listener per name (in that order, on the
// matching port) to props: listened on, advertised, and mapped to its
// security protocol in protocols. It returns each listener's address.
func addListeners(props map[string]string, names []string, ports []int, protocols map[string]string) map[string]string {
	listeners := map[string]string{}
	for i, name := range names {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[i])
		listeners[name] = addr
		props["listeners"] += "," + name + "://" + addr
		props["advertised.listeners"] += "," + name + "://" + addr
		props["listener.security.protocol.map"] += "," + name + ":" + protocols[name]
	}
	return listeners
}

// jarFiles are the configuration files of one broker.
type jarFiles struct {
	server, log4j2, log4j1 string // paths of server.properties and the two log4j configurations
}

// logOpts are the JVM flags that point both log4j versions at their files.
func (f jarFiles) logOpts() []string {
	return []string{"-Dlog4j2.configurationFile=" + f.log4j2, "-Dlog4j.configuration=file:" + f.log4j1}
}

// writeJarFiles writes props, sorted by key, as server.properties into dir,
// next to the log4j configurations.
func writeJarFiles(dir string, props map[string]string) (jarFiles, error) {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", k, props[k])
	}
	f := jarFiles{
		server: filepath.Join(dir, "server.properties"),
		log4j2: filepath.Join(dir, "log4j2.properties"),
		log4j1: filepath.Join(dir, "log4j.properties"),
	}
	for name, body := range map[string]string{f.server: sb.String(), f.log4j2: log4j2Props, f.log4j1: log4j1Props} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			return jarFiles{}, err
		}
	}
	return f, nil
}

// formatStorage formats the data folder with a new cluster id, adding
// formatArgs to the command. dir is named in the error.
func formatStorage(java, cp string, files jarFiles, formatArgs []string, dir string) error {
	// Static quorum: plain -t, never --standalone.
	fargs := append([]string{"-Xmx256m"}, files.logOpts()...)
	fargs = append(fargs, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", newClusterID(), "-c", files.server)
	fargs = append(fargs, formatArgs...)
	if out, err := exec.Command(java, fargs...).CombinedOutput(); err != nil {
		return fmt.Errorf("kafka storage format (files kept in %s): %v\n%s", dir, err, out)
	}
	return nil
}

// jarProcess is a running broker JVM.
type jarProcess struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
	logPath string        // its stdout and stderr
}

// launchBroker starts kafka.Kafka with userOpts before the stock JVM flags
// and its output in dir/broker.log. The broker dies with this process (Linux).
func launchBroker(java, cp string, files jarFiles, userOpts []string, dir string) (*jarProcess, error) {
	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, userOpts...), jvmOpts...)
	args = append(args, files.logOpts()...)
	args = append(args, "-cp", cp, "kafka.Kafka", files.server)
	cmd := exec.Command(java, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &jarProcess{cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exited) }()
	return p, nil
}

// stop asks the broker for a controlled shutdown, kills it after 30s, and
// returns once it has exited.
func (p *jarProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // controlled shutdown
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// notReadyError explains a stopped broker that never became ready: when its
// log shows a lost port race, errPortTaken (and dir is removed, so the next
// try starts clean); otherwise err with the log's last 40 lines, dir kept.
func notReadyError(err error, dir, logPath string, ports []int) error {
	if log, _ := os.ReadFile(logPath); bytes.Contains(log, []byte("Address already in use")) {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("kafka broker on ports %v: %w", ports, errPortTaken)
	}
	return fmt.Errorf("kafka broker (files kept in %s): %v\n%s", dir, err, tail(logPath, 40))
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// apiVersionsProbe sends ApiVersions v0 (request header v1) and wants error_code 0.
// A KRaft broker only processes requests once it is registered and unfenced;
// its port accepts connections earlier than that.
func apiVersionsProbe(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	const correlationID = 7
	const clientID = "probe"
	body := binary.BigEndian.AppendUint16(nil, 18) // api_key: ApiVersions
	body = binary.BigEndian.AppendUint16(body, 0)  // api_version: 0
	body = binary.BigEndian.AppendUint32(body, correlationID)
	body = binary.BigEndian.AppendUint16(body, uint16(len(clientID)))
	body = append(body, clientID...)
	req := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(req, body...)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 6 || n > 1<<20 {
		return fmt.Errorf("unexpected response size %d", n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(c, resp); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(resp[:4]) != correlationID {
		return errors.New("correlation id mismatch")
	}
	if code := int16(binary.BigEndian.Uint16(resp[4:6])); code != 0 {
		return fmt.Errorf("ApiVersions error_code %d", code)
	}
	return nil
}
