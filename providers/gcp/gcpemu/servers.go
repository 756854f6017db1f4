package gcpemu

import (
	"context"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/resourcemanager/apiv3/resourcemanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// projectsServer serves google.cloud.resourcemanager.v3.Projects.
type projectsServer struct {
	resourcemanagerpb.UnimplementedProjectsServer
	e *Emulator
}

func (s *projectsServer) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.getIamPolicy(ctx, projectsService, req)
}

func (s *projectsServer) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.setIamPolicy(ctx, projectsService, req)
}

func (s *projectsServer) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	return s.e.testIamPermissions(ctx, projectsService, req)
}

func (s *projectsServer) GetProject(ctx context.Context, req *resourcemanagerpb.GetProjectRequest) (*resourcemanagerpb.Project, error) {
	name, err := s.e.getResource(ctx, projectsService, req.GetName())
	if err != nil {
		return nil, err
	}
	return &resourcemanagerpb.Project{
		Name: name, ProjectId: name[len("projects/"):], DisplayName: name[len("projects/"):],
		State: resourcemanagerpb.Project_ACTIVE,
	}, nil
}

// foldersServer serves google.cloud.resourcemanager.v3.Folders.
type foldersServer struct {
	resourcemanagerpb.UnimplementedFoldersServer
	e *Emulator
}

func (s *foldersServer) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.getIamPolicy(ctx, foldersService, req)
}

func (s *foldersServer) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.setIamPolicy(ctx, foldersService, req)
}

func (s *foldersServer) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	return s.e.testIamPermissions(ctx, foldersService, req)
}

func (s *foldersServer) GetFolder(ctx context.Context, req *resourcemanagerpb.GetFolderRequest) (*resourcemanagerpb.Folder, error) {
	name, err := s.e.getResource(ctx, foldersService, req.GetName())
	if err != nil {
		return nil, err
	}
	return &resourcemanagerpb.Folder{Name: name, DisplayName: name[len("folders/"):], State: resourcemanagerpb.Folder_ACTIVE}, nil
}

// organizationsServer serves google.cloud.resourcemanager.v3.Organizations.
type organizationsServer struct {
	resourcemanagerpb.UnimplementedOrganizationsServer
	e *Emulator
}

func (s *organizationsServer) GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.getIamPolicy(ctx, organizationsService, req)
}

func (s *organizationsServer) SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	return s.e.setIamPolicy(ctx, organizationsService, req)
}

func (s *organizationsServer) TestIamPermissions(ctx context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	return s.e.testIamPermissions(ctx, organizationsService, req)
}

func (s *organizationsServer) GetOrganization(ctx context.Context, req *resourcemanagerpb.GetOrganizationRequest) (*resourcemanagerpb.Organization, error) {
	name, err := s.e.getResource(ctx, organizationsService, req.GetName())
	if err != nil {
		return nil, err
	}
	return &resourcemanagerpb.Organization{Name: name, DisplayName: name[len("organizations/"):], State: resourcemanagerpb.Organization_ACTIVE}, nil
}

// getResource serves GetProject, GetFolder and GetOrganization: the name
// of an existing (or, with AutoCreate, new) resource, NOT_FOUND otherwise.
func (e *Emulator) getResource(ctx context.Context, s service, name string) (string, error) {
	if err := s.checkName(name); err != nil {
		return "", err
	}
	if err := e.inject(ctx, MethodGetResource, name); err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lookupLocked(name, e.autoCreate) == nil {
		return "", status.Errorf(codes.NotFound, "%s not found: create it in the emulator (CreateProject/CreateFolder/CreateOrganization) or start it with AutoCreate.", name)
	}
	return name, nil
}
