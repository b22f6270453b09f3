package compose

import (
	"context"
	"testing"
)

// menu is a dev environment of alternatives: two web servers on port 80, used
// one at a time, as popular PHP setups are.
const menu = `services:
  nginx:
    image: nginx:1
    ports: ["80:80"]
    depends_on: [php]
  apache:
    image: httpd:2
    ports: ["80:80"]
    depends_on: [php]
  php:
    image: php:8
    depends_on:
      mysql: {condition: service_healthy}
  mysql:
    image: mysql:8
    healthcheck: {test: [CMD, /probe]}
  adminer:
    image: adminer:4
    profiles: [tools]
`

func TestLoadSelectedServices(t *testing.T) {
	dir := writeCompose(t, "dev", menu)
	load := func(services ...string) ([]string, error) {
		p, _, err := Load(context.Background(), LoadOptions{WorkingDir: dir, Services: services})
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range p.Services {
			names = append(names, s.Name)
		}
		return names, nil
	}
	_, err := load()
	wantError(t, err, `compose.yaml: service "nginx": ports: host port 80/tcp is already published by service "apache"`)

	got, err := load("nginx")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "nginx and its dependencies", got, []string{"mysql", "nginx", "php"})

	got, err = load("adminer", "mysql")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "a service of an inactive profile, named", got, []string{"adminer", "mysql"})

	_, err = load("nginx", "apache")
	wantError(t, err, `compose.yaml: service "nginx": ports: host port 80/tcp is already published by service "apache"`)

	_, err = load("ngnix")
	wantError(t, err, `compose.yaml: services: no service "ngnix" in the project (it has apache, mysql, nginx, php)`)
}
