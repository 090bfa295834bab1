# shellcheck shell=bash
# Sourced by bench/run.sh and bench/standin/nginx-playground.sh.
#
# write_nginx_conf DIR PORT SNIPPET
#   Writes DIR/nginx.conf: one nginx process (no master, one worker, in the
#   foreground) listening on 127.0.0.1:PORT, every path it writes (pid, error
#   log, temp dirs) inside DIR, no access log, effectively unlimited keep-alive.
#   SNIPPET is pasted into the server block (the locations).
#   Nothing under /etc/nginx, /var/lib/nginx or /run is read or written.
#   Start it with:  nginx -p DIR/ -e DIR/error.log -c DIR/nginx.conf
write_nginx_conf() {
  local dir=$1 port=$2 snippet=$3
  mkdir -p "$dir/tmp"
  cat > "$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections ${NGINX_WORKER_CONNECTIONS:-4096};
}

http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    server {
        listen 127.0.0.1:$port;
        $snippet
    }
}
CONF
}
