# syntax=docker/dockerfile:1
# reindexer container image: static Go binary on distroless.
#   docker build -t reindexer .
#   docker run --rm reindexer version
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Module downloads first, cached independently of the sources.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/reindexer ./cmd/reindexer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/reindexer /usr/local/bin/reindexer
USER nonroot:nonroot
# Configuration comes from REINDEXER_* environment variables (see docker-compose.yml).
ENTRYPOINT ["reindexer"]
CMD ["run"]
