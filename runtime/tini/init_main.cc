// shoal-init [--] CMD ARGS...: runs CMD as its child, forwards every catchable signal to it,
// reaps every process reparented to it (PID 1 of a pid namespace inherits all orphans), and
// exits with CMD's status (code, or 128+signal), like tini.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) ++first;
  if (first >= argc) {
    fprintf(stderr, "usage: shoal-init [--] CMD [ARGS...]\n");
    return 2;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) {
    perror("shoal-init: fork");
    return 1;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    execvp(argv[first], argv + first);
    fprintf(stderr, "shoal-init: exec %s: %s\n", argv[first], strerror(errno));
    _exit(127);
  }
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;  // an orphan: reaped, nothing else to do
      // Reap what is left before exiting (the kernel kills the namespace after us anyway).
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}
