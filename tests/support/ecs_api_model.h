/*
 * ecs_api_model.h - container instances and services for the fake ECS
 * API's model (fake_aws.h), as JSON text in the shapes
 * DescribeContainerInstances and DescribeServices answer, after the AWS
 * API reference's examples (attributes, the four registered resources
 * with doubleValue and longValue beside integerValue, versionInfo; a
 * service's deployment, its events newest first): written for the tests
 * and benchmarks, not recordings. Header-only; the caller frees what it
 * gets (NULL on OOM).
 */
#ifndef MW_ECS_API_MODEL_H
#define MW_ECS_API_MODEL_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ecsm_instance {
    const char *ec2_id;        /* "i-0123..."; the fake makes the ARN from it */
    const char *arn;           /* NULL: made by the fake from ec2_id */
    const char *status;        /* ACTIVE, DRAINING, INACTIVE, ... */
    int connected;             /* agentConnected */
    int running, pending;      /* tasks */
    int cpu, cpu_left;         /* registered and remaining CPU units */
    int mem, mem_left;         /* MiB */
    const char *agent_version; /* "1.80.0" */
} ecsm_instance;

static inline cJSON *ecsm_resource(const char *name, int v)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "doubleValue", 0.0);
    cJSON_AddNumberToObject(r, "integerValue", v);
    cJSON_AddNumberToObject(r, "longValue", 0);
    cJSON_AddStringToObject(r, "name", name);
    cJSON_AddStringToObject(r, "type", "INTEGER");
    return r;
}

static inline cJSON *ecsm_ports(const char *name, int tcp)
{
    static const char *const ports[] = {"22", "2375", "2376", "51678", "51679"};
    cJSON *r = cJSON_CreateObject(), *set;
    cJSON_AddNumberToObject(r, "doubleValue", 0.0);
    cJSON_AddNumberToObject(r, "integerValue", 0);
    cJSON_AddNumberToObject(r, "longValue", 0);
    cJSON_AddStringToObject(r, "name", name);
    set = cJSON_AddArrayToObject(r, "stringSetValue");
    for (int i = 0; tcp && i < 5; i++)
        cJSON_AddItemToArray(set, cJSON_CreateString(ports[i]));
    cJSON_AddStringToObject(r, "type", "STRINGSET");
    return r;
}

static inline cJSON *ecsm_resources(int cpu, int mem)
{
    cJSON *l = cJSON_CreateArray();
    cJSON_AddItemToArray(l, ecsm_resource("CPU", cpu));
    cJSON_AddItemToArray(l, ecsm_resource("MEMORY", mem));
    cJSON_AddItemToArray(l, ecsm_ports("PORTS", 1));
    cJSON_AddItemToArray(l, ecsm_ports("PORTS_UDP", 0));
    return l;
}

static inline char *ecsm_instance_json(const ecsm_instance *in)
{
    static const char *const attrs[] = {
        "com.amazonaws.ecs.capability.privileged-container",
        "com.amazonaws.ecs.capability.docker-remote-api.1.17",
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "com.amazonaws.ecs.capability.logging-driver.json-file",
        "com.amazonaws.ecs.capability.logging-driver.syslog",
        "com.amazonaws.ecs.capability.ecr-auth",
        "com.amazonaws.ecs.capability.task-iam-role",
    };
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "attributes"), *v;
    cJSON_AddBoolToObject(o, "agentConnected", in->connected);
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", attrs[i]);
        cJSON_AddItemToArray(a, x);
    }
    if (in->arn)
        cJSON_AddStringToObject(o, "containerInstanceArn", in->arn);
    cJSON_AddStringToObject(o, "ec2InstanceId", in->ec2_id);
    cJSON_AddNumberToObject(o, "pendingTasksCount", in->pending);
    cJSON_AddItemToObject(o, "registeredResources", ecsm_resources(in->cpu, in->mem));
    cJSON_AddItemToObject(o, "remainingResources", ecsm_resources(in->cpu_left, in->mem_left));
    cJSON_AddNumberToObject(o, "runningTasksCount", in->running);
    cJSON_AddStringToObject(o, "status", in->status);
    cJSON_AddNumberToObject(o, "version", 850);
    v = cJSON_AddObjectToObject(o, "versionInfo");
    cJSON_AddStringToObject(v, "agentHash", "0931217");
    cJSON_AddStringToObject(v, "agentVersion", in->agent_version);
    cJSON_AddStringToObject(v, "dockerVersion", "DockerVersion: 20.10.25");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

typedef struct ecsm_event {
    const char *id;
    double created; /* Unix seconds */
    const char *message;
} ecsm_event;

typedef struct ecsm_service {
    const char *name;
    const char *status; /* NULL: ACTIVE */
    int desired, running, pending;
    const ecsm_event *events; /* newest first, as AWS lists them */
    size_t nevents;
} ecsm_service;

static inline char *ecsm_service_json(const ecsm_service *s)
{
    char td[160];
    cJSON *o = cJSON_CreateObject(), *d, *dep, *ev;
    snprintf(td, sizeof td, "arn:aws:ecs:us-east-1:123456789012:task-definition/%s:6", s->name);
    cJSON_AddNumberToObject(o, "createdAt", 1466801940.35);
    d = cJSON_AddObjectToObject(o, "deploymentConfiguration");
    cJSON_AddNumberToObject(d, "maximumPercent", 200);
    cJSON_AddNumberToObject(d, "minimumHealthyPercent", 100);
    dep = cJSON_CreateObject();
    cJSON_AddNumberToObject(dep, "createdAt", 1466801940.35);
    cJSON_AddNumberToObject(dep, "desiredCount", s->desired);
    cJSON_AddStringToObject(dep, "id", "ecs-svc/9223370570052835451");
    cJSON_AddNumberToObject(dep, "pendingCount", s->pending);
    cJSON_AddNumberToObject(dep, "runningCount", s->running);
    cJSON_AddStringToObject(dep, "status", "PRIMARY");
    cJSON_AddStringToObject(dep, "taskDefinition", td);
    cJSON_AddNumberToObject(dep, "updatedAt", 1466801940.35);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "deployments"), dep);
    cJSON_AddNumberToObject(o, "desiredCount", s->desired);
    ev = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; i < s->nevents; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "createdAt", s->events[i].created);
        cJSON_AddStringToObject(e, "id", s->events[i].id);
        cJSON_AddStringToObject(e, "message", s->events[i].message);
        cJSON_AddItemToArray(ev, e);
    }
    cJSON_AddArrayToObject(o, "loadBalancers");
    cJSON_AddNumberToObject(o, "pendingCount", s->pending);
    cJSON_AddNumberToObject(o, "runningCount", s->running);
    cJSON_AddStringToObject(o, "serviceName", s->name);
    cJSON_AddStringToObject(o, "status", s->status ? s->status : "ACTIVE");
    cJSON_AddStringToObject(o, "taskDefinition", td);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

#endif
