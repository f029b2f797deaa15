// Command warmfloor is the least a warm copy has to do, as a measure of what any Go
// client can reach on a machine: GET the source manifest and HEAD the destination's,
// side by side, and compare their digests. No ping, no configuration, no credentials.
// bench/README.md ("Client") times it next to hubctl and crane.
//
//	go build -o /tmp/warmfloor ./bench/warmfloor
//	/tmp/warmfloor http://127.0.0.1:5000/v2/app/manifests/1 http://127.0.0.1:5001/v2/app/manifests/1
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

const accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json," +
	"application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: warmfloor SOURCE-MANIFEST-URL DESTINATION-MANIFEST-URL")
		os.Exit(2)
	}
	var (
		wg       sync.WaitGroup
		src, dst string
		errs     [2]error
	)
	wg.Go(func() { src, errs[0] = digestOf(http.MethodGet, os.Args[1]) })
	wg.Go(func() { dst, errs[1] = digestOf(http.MethodHead, os.Args[2]) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "warmfloor:", err)
			os.Exit(1)
		}
	}
	if src != dst {
		fmt.Fprintf(os.Stderr, "warmfloor: source %s, destination %s: a copy would move something\n", src, dst)
		os.Exit(1)
	}
	fmt.Println(src)
}

// digestOf sends method to url and returns the Docker-Content-Digest of a 200 answer.
func digestOf(method, url string) (string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}
