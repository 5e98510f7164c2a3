// Command legacyclient is a legacy APNs client that reads the way many Go clients of the binary
// protocol did: it drops the bytes of a Read that also returns an error (`if err != nil { break }`
// before using buf[:n]). crypto/tls returns (n, io.EOF) from one Read when the data and the TLS
// close_notify arrived together, so such a client misses an error-response (or the last feedback
// tuple) sent in one burst with the close, and sees it when they arrive apart.
//
// Gateway mode sends -n framed notifications (command 2, identifiers 1..n) and reports what it
// read before the connection ended; feedback mode reports the bytes of the tuples it read.
// Output: one JSON object on stdout, {"read": "<hex>", "error": "<how the read loop ended>"}.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "", "host:port of the gateway or feedback service")
	ca := flag.String("ca", "", "CA certificate (PEM)")
	cert := flag.String("cert", "", "client certificate (PEM)")
	key := flag.String("key", "", "client key (PEM)")
	mode := flag.String("mode", "gateway", "gateway or feedback")
	n := flag.Int("n", 1, "notifications to send (gateway)")
	token := flag.String("token", "0707070707070707070707070707070707070707070707070707070707070707", "device token, hex")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	check(err)
	caPEM, err := os.ReadFile(*ca)
	check(err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		check(fmt.Errorf("no certificate in %s", *ca))
	}
	conn, err := tls.Dial("tcp", *addr, &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   "localhost",
	})
	check(err)
	defer conn.Close()
	check(conn.SetDeadline(time.Now().Add(20 * time.Second)))

	size := 38 // one feedback tuple
	if *mode == "gateway" {
		tok, err := hex.DecodeString(*token)
		check(err)
		for id := 1; id <= *n; id++ {
			_, err := conn.Write(frame(uint32(id), tok, []byte(`{"aps":{"alert":"hi"}}`)))
			check(err)
		}
		size = 6 // one error-response
	}

	// The common read loop: an error ends it, and whatever that Read returned with it is dropped.
	var got []byte
	buf := make([]byte, size)
	var ended error
	for {
		n, err := conn.Read(buf)
		if err != nil {
			ended = err
			break
		}
		got = append(got, buf[:n]...)
	}
	out, _ := json.Marshal(map[string]string{"read": hex.EncodeToString(got), "error": ended.Error()})
	fmt.Println(string(out))
}

// frame encodes a command-2 notification: token, payload, identifier, expiry 0, priority 10.
func frame(id uint32, token, payload []byte) []byte {
	var items []byte
	item := func(kind byte, data []byte) {
		items = append(items, kind)
		items = binary.BigEndian.AppendUint16(items, uint16(len(data)))
		items = append(items, data...)
	}
	item(1, token)
	item(2, payload)
	item(3, binary.BigEndian.AppendUint32(nil, id))
	item(4, []byte{0, 0, 0, 0})
	item(5, []byte{10})
	f := []byte{2}
	f = binary.BigEndian.AppendUint32(f, uint32(len(items)))
	return append(f, items...)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacyclient:", err)
		os.Exit(2)
	}
}
