package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
)

// greet is the server-first mode (-greet ADDR): like an SMTP or MySQL server,
// it speaks first on every connection, "220 NAME ready", then answers each
// line the client sends with "NAME: LINE". It shows that a port tend serves
// without being told its protocol still works for servers that greet.
func greet(ctx context.Context, addr, name string, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		go greetOne(c, name)
	}
}

func greetOne(c net.Conn, name string) {
	defer c.Close()
	if _, err := fmt.Fprintf(c, "220 %s ready\r\n", name); err != nil {
		return
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := fmt.Fprintf(c, "%s: %s\r\n", name, sc.Text()); err != nil {
			return
		}
	}
}
