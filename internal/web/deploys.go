package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/proxy"
	"github.com/hubctl/hubctl/internal/hubapi"
)

// deploysPerPage is one page of a service's deploy history.
const deploysPerPage = 50

// servicesPerPage is one page of a namespace's deploy services.
const servicesPerPage = 100

type deploysPage struct {
	basePage
	Namespace, Service string
	Deploys            []deploy.Record
	// Services are the namespace's services with their newest deploy, when no
	// service is named.
	Services []deploy.Record
	NextURL  string
	Error    string
}

// deploysList answers /settings/admin/deploys?namespace=NS&service=S[&before=N]: the
// service's deploys, newest first, for whoever may read the whole namespace (as GET
// /api/v1/deploys/NS/S does). Without a service it lists the namespace's services
// (&after=NAME pages them by name), each linked to its history.
func (h *Handler) deploysList(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if h.o.Deploys == nil {
		h.notFound(w, r)
		return
	}
	q := r.URL.Query()
	v := viewerOf(r)
	p := deploysPage{basePage: h.base(r, "Deploys"), Namespace: clip(q.Get("namespace"), 256), Service: clip(q.Get("service"), 256)}
	if p.Namespace == "" {
		p.Namespace = v.user.Name
	}
	if p.Service != "" && !proxy.ServiceNameRe.MatchString(p.Service) {
		p.Error = "A service name is lower-case letters, digits, '.', '_' and '-'."
		h.render(w, r, http.StatusBadRequest, "deploys", p)
		return
	}
	verdict, err := h.access.Workflows(r.Context(), ptr(v.principal()), p.Namespace, accounts.RoleRead)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if verdict != hubapi.Allowed {
		h.notFound(w, r)
		return
	}
	if p.Service == "" {
		after := clip(q.Get("after"), 256)
		if p.Services, err = h.o.Deploys.ListDeployServices(r.Context(), p.Namespace, after, servicesPerPage); err != nil {
			h.internal(w, r, err)
			return
		}
		if len(p.Services) == servicesPerPage {
			p.NextURL = "/settings/admin/deploys?" + url.Values{"namespace": {p.Namespace},
				"after": {p.Services[len(p.Services)-1].Service}}.Encode()
		}
		h.render(w, r, http.StatusOK, "deploys", p)
		return
	}
	before := 0
	if s := q.Get("before"); s != "" {
		if before, err = strconv.Atoi(s); err != nil || before < 1 {
			h.notFound(w, r)
			return
		}
	}
	list, err := h.o.Deploys.ListDeploys(r.Context(), p.Namespace, p.Service, before, deploysPerPage)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p.Deploys = list
	if len(list) == deploysPerPage && list[len(list)-1].Number > 1 {
		p.NextURL = "/settings/admin/deploys?" + url.Values{"namespace": {p.Namespace}, "service": {p.Service},
			"before": {strconv.Itoa(list[len(list)-1].Number)}}.Encode()
	}
	h.render(w, r, http.StatusOK, "deploys", p)
}
