package main

import "testing"

func TestReplicaCounts(t *testing.T) {
	got, err := replicaCounts(20, 50)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, c := range got {
		sum += c
	}
	if len(got) != 20 || sum != 50 {
		t.Fatalf("replicaCounts(20, 50) = %v: %d services, %d containers", got, len(got), sum)
	}
	t.Log(got)
}
