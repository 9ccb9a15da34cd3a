// Command pernodequery drives the secondary-index queries of aerospike-client-go v6 before
// v6.13.0, where Query, QueryNode and QueryObjects with a filter send every node one query
// with no partition list and read one stream per node, against a test server. It exits
// non-zero at the first result that differs from what the server must produce. The
// testserver tests build it against v6.12.0 and v6.10.0 and run -check all, then -check
// fault with a query fault the caller injects on every node.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	as "github.com/aerospike/aerospike-client-go/v6"
	"github.com/aerospike/aerospike-client-go/v6/types"
)

type person struct {
	Name string `as:"name"`
	Age  int    `as:"age"`
}

const set = "pernode"

// matching are the ages of the records the filter selects.
var matching = []int{2, 3, 4, 5}

func main() {
	hosts := flag.String("hosts", "127.0.0.1:3000", "comma-separated host:port list")
	check := flag.String("check", "all", "all, or fault: every query fails with PARAMETER_ERROR")
	flag.Parse()
	var hs []*as.Host
	for _, h := range strings.Split(*hosts, ",") {
		host, port, _ := strings.Cut(h, ":")
		p, _ := strconv.Atoi(port)
		hs = append(hs, as.NewHost(host, p))
	}
	cl, err := as.NewClientWithPolicyAndHost(nil, hs...)
	if err != nil {
		fail("connect: %v", err)
	}
	defer cl.Close()
	switch *check {
	case "all":
		for i := 0; i < 10; i++ {
			k, err := as.NewKey("test", set, i)
			if err != nil {
				fail("key: %v", err)
			}
			if err := cl.PutObject(nil, k, &person{Name: fmt.Sprintf("p%d", i), Age: i}); err != nil {
				fail("PutObject: %v", err)
			}
		}
		for _, c := range []struct {
			name string
			run  func(*as.Client) error
		}{{"query", checkQuery}, {"query_node", checkQueryNode}, {"query_objects", checkQueryObjects}} {
			if err := c.run(cl); err != nil {
				fail("%s: %v", c.name, err)
			}
			fmt.Println("ok", c.name)
		}
	case "fault":
		if err := checkFault(cl); err != nil {
			fail("fault: %v", err)
		}
		fmt.Println("ok fault")
	default:
		fail("no check named %q", *check)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func stmt() *as.Statement {
	s := as.NewStatement("test", set)
	if err := s.SetFilter(as.NewRangeFilter("age", 2, 5)); err != nil {
		fail("filter: %v", err)
	}
	return s
}

// records reads a recordset to its end: the ages of its records, sorted, and its errors.
func records(rs *as.Recordset) (ages []int, errs []error) {
	for res := range rs.Results() {
		if res.Err != nil {
			errs = append(errs, res.Err)
			continue
		}
		ages = append(ages, res.Record.Bins["age"].(int))
	}
	slices.Sort(ages)
	return ages, errs
}

// objects reads an object recordset to its end, objects and errors together.
func objects(rs *as.Recordset, ch chan *person) (ages []int, errs []error) {
	objs, errc := ch, rs.Errors()
	for objs != nil || errc != nil {
		select {
		case p, ok := <-objs:
			if !ok {
				objs = nil
				continue
			}
			ages = append(ages, p.Age)
		case err, ok := <-errc:
			if !ok {
				errc = nil
				continue
			}
			errs = append(errs, err)
		}
	}
	slices.Sort(ages)
	return ages, errs
}

func checkQuery(cl *as.Client) error {
	rs, err := cl.Query(nil, stmt())
	if err != nil {
		return err
	}
	if ages, errs := records(rs); !slices.Equal(ages, matching) || len(errs) != 0 {
		return fmt.Errorf("Query = %v, errors %v; want %v", ages, errs, matching)
	}
	return nil
}

// Each node answers for the partitions it owns: the nodes' streams together hold every
// matching record once (a node that answered for all would give duplicates).
func checkQueryNode(cl *as.Client) error {
	var all []int
	for _, n := range cl.GetNodes() {
		rs, err := cl.QueryNode(nil, n, stmt())
		if err != nil {
			return err
		}
		ages, errs := records(rs)
		if len(errs) != 0 {
			return fmt.Errorf("QueryNode(%s): %v", n, errs)
		}
		all = append(all, ages...)
	}
	slices.Sort(all)
	if !slices.Equal(all, matching) {
		return fmt.Errorf("QueryNode over every node = %v, want %v", all, matching)
	}
	return nil
}

func checkQueryObjects(cl *as.Client) error {
	ch := make(chan *person, 1)
	rs, err := cl.QueryObjects(nil, stmt(), ch)
	if err != nil {
		return err
	}
	if ages, errs := objects(rs, ch); !slices.Equal(ages, matching) || len(errs) != 0 {
		return fmt.Errorf("QueryObjects = %v, errors %v; want %v", ages, errs, matching)
	}
	return nil
}

// Every node fails its query: each stream ends with its node's error, one per node, and
// no record.
func checkFault(cl *as.Client) error {
	nodes := len(cl.GetNodes())
	wantErrs := func(call string, ages []int, errs []error) error {
		if len(ages) != 0 || len(errs) != nodes {
			return fmt.Errorf("%s = %v, errors %v; want no record and %d errors", call, ages, errs, nodes)
		}
		for _, err := range errs {
			var ae *as.AerospikeError
			if !errors.As(err, &ae) || ae.ResultCode != types.PARAMETER_ERROR {
				return fmt.Errorf("%s error %v, want PARAMETER_ERROR", call, err)
			}
		}
		return nil
	}
	rs, err := cl.Query(nil, stmt())
	if err != nil {
		return err
	}
	ages, errs := records(rs)
	if err := wantErrs("Query", ages, errs); err != nil {
		return err
	}
	ch := make(chan *person, 1)
	if rs, err = cl.QueryObjects(nil, stmt(), ch); err != nil {
		return err
	}
	ages, errs = objects(rs, ch)
	return wantErrs("QueryObjects", ages, errs)
}
