// kubectl's AGE column text for durations read from stdin: one whole number of seconds a
// line in, apimachinery's duration.HumanDuration (what `kubectl get` prints) a line out.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		seconds, err := strconv.ParseInt(in.Text(), 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(duration.HumanDuration(time.Duration(seconds) * time.Second))
	}
}
